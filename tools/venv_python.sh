# Sourced by tools/setup_*_env.sh. find_python WHAT LOW HIGH ENV_VAR CANDIDATES...
# (LOW / HIGH as "3,10" "3,13") prints $ENV_VAR when it is set, else the first candidate whose
# Python version is in LOW..HIGH; with none, one line on stderr naming WHAT, the range and
# ENV_VAR, and exit 2.
find_python() {
  local what="$1" low="$2" high="$3" var="$4"; shift 4
  local given="${!var:-}"
  if [[ -n "$given" ]]; then echo "$given"; return 0; fi
  local candidate
  for candidate in "$@"; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c "import sys; sys.exit(0 if ($low) <= sys.version_info[:2] <= ($high) else 1)" 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "$what needs Python ${low/,/.}-${high/,/.} and none was found; set $var=/path/to/python${high/,/.}" >&2
  exit 2
}

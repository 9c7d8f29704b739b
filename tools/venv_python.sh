# Sourced by tools/setup_*_env.sh.
#
# check_venv_dir NAME VENV NARGS ARGS...: the script NAME takes one optional argument, VENV_DIR
# (resolved to VENV); more arguments, a VENV that is a file, or a non-empty folder that is not a
# virtual environment are one line on stderr naming NAME, and exit 2.
check_venv_dir() {
  local name="$1" venv="$2" nargs="$3"; shift 3
  if [[ $nargs -gt 1 ]]; then
    echo "$name: one argument (VENV_DIR) expected, got $nargs: $*" >&2; exit 2
  fi
  if [[ -e "$venv" && ! -d "$venv" ]]; then
    echo "$name: $venv exists and is not a folder; choose another VENV_DIR" >&2; exit 2
  fi
  if [[ -d "$venv" && -n "$(ls -A "$venv")" && ! -f "$venv/pyvenv.cfg" ]]; then
    echo "$name: $venv is a non-empty folder that is not a virtual environment; choose another VENV_DIR" >&2
    exit 2
  fi
}

# find_python WHAT LOW HIGH ENV_VAR CANDIDATES...
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

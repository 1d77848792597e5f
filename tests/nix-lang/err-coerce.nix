"number ${1}"

package query

import "flag"

var update = flag.Bool("update", false, "rewrite the README's field table")

package tensors

import "flag"

// update makes golden-file tests rewrite their files in testdata/ instead of
// comparing against them: go test ./core/tensors -run TestX -update
var update = flag.Bool("update", false, "rewrite golden files in testdata/")

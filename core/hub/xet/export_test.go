package xet

// For the external test package (official_test.go), which may import
// hubemu: hubemu imports this package, so that test cannot live here.
var (
	RequireTool      = requireTool
	InstallReference = installReference
)

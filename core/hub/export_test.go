package hub

// SetXetXorbSize makes the xorbs of Xet uploads at most n bytes (0: the
// default), for tests that need many xorbs from little data; it returns a
// function restoring the previous size. Not for parallel tests.
func SetXetXorbSize(n int) (restore func()) {
	old := xetXorbSize
	xetXorbSize = n
	return func() { xetXorbSize = old }
}

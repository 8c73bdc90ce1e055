package hub

import "fmt"

// Transfer chooses how the bytes of large files reach the Hub.
type Transfer string

const (
	// TransferAuto offers Xet and the LFS transfers and uses what the
	// Hub answers (Xet when it can).
	TransferAuto Transfer = "auto"
	// TransferXet uses Xet; a Hub that refuses it is an error.
	TransferXet Transfer = "xet"
	// TransferLFS offers only the Git LFS transfers (basic, multipart).
	TransferLFS Transfer = "lfs"
)

// ParseTransfer reads a --transfer value; "" is TransferAuto.
func ParseTransfer(s string) (Transfer, error) {
	switch Transfer(s) {
	case "", TransferAuto:
		return TransferAuto, nil
	case TransferXet, TransferLFS:
		return Transfer(s), nil
	}
	return "", fmt.Errorf("hub: transfer %q is not auto, xet or lfs", s)
}

package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// SaveDestination is where to save p when the user chose chosen: chosen
// itself when it is missing or empty, else a new folder inside it named
// after p's folder (and the variant), numbered when that name is taken.
// A folder inside p's is refused: Save never writes into its source.
func SaveDestination(p *Pipeline, chosen, variant string) (string, error) {
	chosen, err := filepath.Abs(chosen)
	if err != nil {
		return "", err
	}
	src, err := filepath.Abs(p.Dir)
	if err != nil {
		return "", err
	}
	if in, err := contains(src, chosen); err != nil || in {
		if err != nil {
			return "", err
		}
		return "", fmt.Errorf("%w: %s", ErrInsideSource, chosen)
	}
	if usable, err := emptyOrMissing(chosen); err != nil || usable {
		return chosen, err
	}
	name := filepath.Base(src)
	if variant != "" {
		name += "-" + variant
	}
	for i := 1; i < 1000; i++ {
		dst := filepath.Join(chosen, name)
		if i > 1 {
			dst += "-" + strconv.Itoa(i)
		}
		if dst == src {
			continue
		}
		if usable, err := emptyOrMissing(dst); err != nil || usable {
			return dst, err
		}
	}
	return "", fmt.Errorf("%s: %w", chosen, ErrDestinationNotEmpty)
}

// emptyOrMissing reports whether dir does not exist or is an empty folder.
func emptyOrMissing(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true, nil
	case err != nil:
		if st, serr := os.Stat(dir); serr == nil && !st.IsDir() {
			return false, nil // a file: look for another name
		}
		return false, err
	}
	return len(entries) == 0, nil
}

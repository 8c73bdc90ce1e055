package pipeline

import (
	"os"
	"path/filepath"
)

// rootSearchDepth is how many folders up from a dropped file or folder
// FindRoot looks: a weights file in a subfolder of a component is
// three levels below its pipeline.
const rootSearchDepth = 4

// FindRoot returns the folder to open for path (a folder, or a file inside one): the nearest folder
// at or above it holding model_index.json, else the nearest holding a
// config.json (a single model), else path's folder itself, which
// pipeline.Open will then refuse with a reason.
func FindRoot(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return path, err
	}
	dir := path
	if !st.IsDir() {
		dir = filepath.Dir(path)
	}
	model := ""
	for d, i := dir, 0; i <= rootSearchDepth; i++ {
		if isRegular(filepath.Join(d, ModelIndexFile)) {
			return d, nil
		}
		if model == "" && isRegular(filepath.Join(d, "config.json")) {
			model = d
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if model != "" {
		return model, nil
	}
	return dir, nil
}

func isRegular(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

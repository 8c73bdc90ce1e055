package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TokenFilePath returns where `hf auth login` keeps its token, as
// huggingface_hub's constants.py computes HF_TOKEN_PATH: HF_TOKEN_PATH,
// else $HF_HOME/token, else $XDG_CACHE_HOME/huggingface/token, else
// ~/.cache/huggingface/token; a leading ~ is the home folder. It returns ""
// when it needs the home folder and none is known. Modelpub only reads it.
func TokenFilePath(opts Options) string {
	home := opts.Home
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	if p := opts.getenv("HF_TOKEN_PATH"); p != "" {
		return filepath.Clean(expandHome(p, home)) // on Windows, \ throughout
	}
	hfHome := opts.getenv("HF_HOME")
	if hfHome == "" {
		cache := opts.getenv("XDG_CACHE_HOME")
		if cache == "" {
			if home == "" {
				return ""
			}
			cache = filepath.Join(home, ".cache")
		}
		hfHome = filepath.Join(cache, "huggingface")
	}
	return expandHome(filepath.Join(expandHome(hfHome, home), "token"), home)
}

// expandHome replaces a leading "~" or "~/" with home, as Python's
// os.path.expanduser does for the current user.
func expandHome(p, home string) string {
	if home == "" || (p != "~" && !strings.HasPrefix(p, "~/") && !strings.HasPrefix(p, "~"+string(filepath.Separator))) {
		return p
	}
	return filepath.Join(home, p[1:])
}

// readTokenFile returns the token in path; "" when the file does not exist
// or is empty, as huggingface_hub treats both as "no token".
func readTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("auth: cannot read the token file of `hf auth login`: %w", err)
	}
	defer f.Close()
	line, tooLong, err := readLine(f)
	if err != nil {
		return "", fmt.Errorf("auth: cannot read the token file %s: %w", path, err)
	}
	if tooLong {
		return "", badToken("the token file "+path, fmt.Sprintf("longer than %d bytes", MaxTokenLen))
	}
	if strings.TrimSpace(strings.TrimPrefix(line, "\ufeff")) == "" {
		return "", nil
	}
	v, why := clean(line)
	if why != "" {
		return "", badToken("the token file "+path, why+"; run `hf auth login` again")
	}
	return v, nil
}

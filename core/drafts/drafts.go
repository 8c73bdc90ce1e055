// Package drafts keeps the model-card edits made in the app, one draft per
// source folder, in the user's config dir, so they survive a restart. The
// source folder itself is never written.
//
// A draft of folder F is two files in the store's folder, named by Key(F):
// <key>.md, the card exactly as README.md would hold it, and <key>.json,
// what the card alone cannot say (the folder's path, whether the user
// edited the body, when the draft was saved, and the SHA-256 of the .md it
// describes). Both are written through a temporary file renamed into place
// (WriteFile, over core/atomicfile), so each is always either the old file
// or the whole new one.
package drafts

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"modelpub/core/atomicfile"
)

// MaxSize is the largest draft Load reads: a model card is text, and a
// bigger file is not one the app wrote.
const MaxSize = 16 << 20

// ErrNoDraft is Load's answer for a folder without a draft; it wraps
// fs.ErrNotExist.
var ErrNoDraft = fmt.Errorf("drafts: no draft: %w", fs.ErrNotExist)

// ErrTooLarge is Load's answer for a draft file over MaxSize.
var ErrTooLarge = errors.New("drafts: file too large for a model card")

// Draft is the card being edited for one source folder.
type Draft struct {
	// Folder is the source folder the card is for.
	Folder string
	// Card is the card as README.md: front matter and body.
	Card []byte
	// BodyEdited says the user edited the body. When false the body is
	// the one the app loaded or generated, and the app loads it afresh
	// rather than keeping this copy (it follows the folder and choices).
	BodyEdited bool
	// Saved is when the draft was written; Save sets it when zero.
	Saved time.Time
}

// meta is <key>.json.
type meta struct {
	Folder     string    `json:"folder"`
	BodyEdited bool      `json:"body_edited"`
	Saved      time.Time `json:"saved"`
	CardSHA256 string    `json:"card_sha256"`
}

// DefaultDir is where the app keeps drafts: <user config dir>/modelpub/cards
// (on Linux $XDG_CONFIG_HOME/modelpub/cards, else ~/.config/modelpub/cards).
func DefaultDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("drafts: no folder to keep card drafts in: %w", err)
	}
	return filepath.Join(dir, "modelpub", "cards"), nil
}

// Store keeps drafts in one folder, created on the first Save. Its methods
// may be called from several goroutines; two writes for the same folder
// must be ordered by the caller (the last rename wins).
type Store struct {
	dir string
}

// NewStore returns a store keeping its drafts in dir.
func NewStore(dir string) *Store { return &Store{dir: dir} }

// Dir is the folder the drafts are kept in.
func (s *Store) Dir() string { return s.dir }

// Key names the drafts of folder: the hex SHA-256 of its absolute path,
// with symbolic links resolved when the folder exists, so one folder
// reached through two paths has one draft.
func Key(folder string) string {
	p, err := filepath.Abs(folder)
	if err != nil {
		p = filepath.Clean(folder)
	}
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	sum := sha256.Sum256([]byte(p))
	return hex.EncodeToString(sum[:])
}

// Path is the file holding folder's draft card.
func (s *Store) Path(folder string) string {
	return filepath.Join(s.dir, Key(folder)+".md")
}

func (s *Store) metaPath(folder string) string {
	return filepath.Join(s.dir, Key(folder)+".json")
}

// Load returns folder's draft, or an error wrapping ErrNoDraft when there
// is none. A missing, unreadable or stale <key>.json (one written for other
// bytes than the .md holds) is no error: the draft then counts as edited
// (BodyEdited), so the user's text is never replaced, and Saved is the
// .md's modification time.
func (s *Store) Load(folder string) (*Draft, error) {
	path := s.Path(folder)
	data, info, err := readSmall(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w for %s", ErrNoDraft, folder)
	}
	if err != nil {
		return nil, err
	}
	d := &Draft{Folder: folder, Card: data, BodyEdited: true, Saved: info.ModTime()}
	raw, _, err := readSmall(s.metaPath(folder))
	if err != nil {
		return d, nil
	}
	var m meta
	if json.Unmarshal(raw, &m) != nil || m.CardSHA256 != sha256Hex(data) {
		return d, nil
	}
	d.BodyEdited = m.BodyEdited
	if !m.Saved.IsZero() {
		d.Saved = m.Saved
	}
	return d, nil
}

// readSmall reads a regular file of at most MaxSize bytes.
func readSmall(path string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("drafts: %s: not a regular file", path)
	}
	if info.Size() > MaxSize {
		return nil, nil, fmt.Errorf("%w: %s holds %d bytes (at most %d)", ErrTooLarge, path, info.Size(), MaxSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("drafts: %w", err)
	}
	if len(data) > MaxSize {
		return nil, nil, fmt.Errorf("%w: %s grew past %d bytes", ErrTooLarge, path, MaxSize)
	}
	return data, info, nil
}

// Save writes d as the draft of d.Folder: the card first, then what
// describes it. Files and the store's folder are private to the user.
func (s *Store) Save(d *Draft) error {
	if d == nil || d.Folder == "" {
		return errors.New("drafts: a draft needs its folder")
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("drafts: %w", err)
	}
	saved := d.Saved
	if saved.IsZero() {
		saved = time.Now()
	}
	abs, err := filepath.Abs(d.Folder)
	if err != nil {
		abs = d.Folder
	}
	m, err := json.MarshalIndent(meta{Folder: abs, BodyEdited: d.BodyEdited, Saved: saved.UTC(),
		CardSHA256: sha256Hex(d.Card)}, "", "  ")
	if err != nil {
		return fmt.Errorf("drafts: %w", err)
	}
	if err := WriteFile(s.Path(d.Folder), d.Card, 0o600); err != nil {
		return err
	}
	return WriteFile(s.metaPath(d.Folder), append(m, '\n'), 0o600)
}

// Delete removes folder's draft; a folder without one is no error.
func (s *Store) Delete(folder string) error {
	for _, p := range []string{s.Path(folder), s.metaPath(folder)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("drafts: %w", err)
		}
	}
	return nil
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// WriteFile writes data to path atomically with mode perm, through
// atomicfile: path is always either the old file or the whole new one, and
// nothing is left behind on failure. Errors name path.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return atomicfile.WriteFile(path, data, perm)
}

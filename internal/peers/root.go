package peers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNotInstalled reports that a peer's executable does not exist. Errors
// wrapping it name the path looked at and the command that installs it.
var ErrNotInstalled = errors.New("not installed")

// ProjectRoot returns the nearest directory at or above the working directory
// that holds a go.mod file: the project root, where .tools/ lives.
func ProjectRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("peers: project root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("peers: project root: no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// toolPath resolves a peer's executable: the value of env if set, otherwise
// rel under the project root. It fails with ErrNotInstalled, naming install,
// when the file does not exist.
func toolPath(env, rel, install string) (string, error) {
	path := os.Getenv(env)
	if path == "" {
		root, err := ProjectRoot()
		if err != nil {
			return "", err
		}
		path = filepath.Join(root, rel)
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%w: %s (run `%s`, or set %s)", ErrNotInstalled, path, install, env)
	}
	return path, nil
}

package notify

import (
	"errors"
	"fmt"
	"strings"

	"github.com/execfaild/execfaild/internal/field"
)

// ResolveSecret returns the secret a sink entry configured either inline
// (value) or through a file (file), never both. key is the inline key's
// name ("url", "token") and names the problem in errors; the file variant is
// key+"_file". The file content is trimmed of surrounding whitespace so an
// editor's trailing newline does not end up in a URL or header.
//
// Errors never contain the secret: a read error names the file path only,
// which is not secret.
func ResolveSecret(value Secret, file, key string) (Secret, error) {
	switch {
	case value != "" && file != "":
		return "", &FieldError{Key: key, Err: fmt.Errorf("set either %s or %s_file, not both", key, key)}
	case file != "":
		b, err := ReadFileCapped(file, MaxSecretFileBytes)
		if err != nil {
			// The error names the file and the operation, not the content.
			return "", &FieldError{Key: key + "_file", Err: fmt.Errorf("read secret: %w", err)}
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", &FieldError{Key: key + "_file", Err: fmt.Errorf("secret file %s is empty", file)}
		}
		return Secret(s), nil
	case value != "":
		return value, nil
	}
	return "", &FieldError{Key: key, Err: fmt.Errorf("missing: set %s or %s_file", key, key)}
}

// FieldError is the one validation error type, field.Error, under the
// name sinks have always used: a sink speaks to notify only.
type FieldError = field.Error

// Errorf returns a FieldError for key.
func Errorf(key, format string, args ...any) error { return field.Errorf(key, format, args...) }

// prefixKey puts a table prefix in front of the key of a FieldError, so
// nested validation reports the full relative key ("dedup.window").
func prefixKey(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return &FieldError{Key: prefix + "." + fe.Key, Err: fe.Err}
	}
	return &FieldError{Key: prefix, Err: err}
}

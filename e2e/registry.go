package e2e

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PushImage pushes a small random image to ref in a test registry, as a
// new upstream tag would appear (a plain-HTTP loopback registry is
// reached over HTTP, as go-containerregistry does for localhost).
func PushImage(ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	img, err := random.Image(512, 1)
	if err != nil {
		return err
	}
	if err := remote.Write(r, img); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

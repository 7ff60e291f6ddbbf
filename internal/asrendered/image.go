package asrendered

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"
)

// Image is a container image's file system, extracted to a folder, and
// its config. Runs never write to Root: each gets an overlay of its own.
type Image struct {
	// Root is the extracted root file system.
	Root   string
	Config v1.Config
	// Platform is the image's os/architecture.
	Platform v1.Platform
}

// ImageFromLayout picks the linux/arch image of the OCI layout in dir
// (whose index.json names one image index or image) and extracts it into
// root.
func ImageFromLayout(dir, arch, root string) (*Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", dir, err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", dir, err)
	}
	img, err := pickImage(ii, arch)
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", dir, err)
	}
	return Extract(img, root)
}

// pickImage walks an index (and the indexes it holds) for linux/arch.
func pickImage(ii v1.ImageIndex, arch string) (v1.Image, error) {
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	var seen []string
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := ii.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			if img, err := pickImage(child, arch); err == nil {
				return img, nil
			}
		case d.MediaType.IsImage():
			if d.Platform == nil {
				seen = append(seen, "(no platform)")
				continue
			}
			seen = append(seen, d.Platform.OS+"/"+d.Platform.Architecture)
			if d.Platform.OS == "linux" && d.Platform.Architecture == arch {
				return ii.Image(d.Digest)
			}
		}
	}
	return nil, fmt.Errorf("no linux/%s image (found %s)", arch, strings.Join(seen, ", "))
}

// Extract writes img's flattened file system into root (created; must be
// empty) as a runtime's snapshotter would: owners, modes, links and
// device-free. Needs root for the owners.
func Extract(img v1.Image, root string) (*Image, error) {
	if err := requireRoot(); err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("extract: config: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	if entries, _ := os.ReadDir(root); len(entries) > 0 {
		return nil, fmt.Errorf("extract: %s is not empty", root)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	if err := untar(rc, root); err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	return &Image{Root: root, Config: cf.Config, Platform: v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}}, nil
}

// untar writes a flattened image stream under root. Names are confined to
// root; directories' modes are set after their contents.
func untar(r io.Reader, root string) error {
	tr := tar.NewReader(r)
	type dirMode struct {
		path string
		hdr  *tar.Header
	}
	var dirs []dirMode
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		clean := path.Clean("/" + hdr.Name)
		if clean == "/" {
			continue
		}
		target := filepath.Join(root, filepath.FromSlash(clean))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
			dirs = append(dirs, dirMode{target, hdr})
			continue
		case tar.TypeReg:
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
			if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
				return err
			}
			continue
		case tar.TypeLink:
			src := filepath.Join(root, filepath.FromSlash(path.Clean("/"+hdr.Linkname)))
			if err := os.Link(src, target); err != nil {
				return err
			}
			continue
		case tar.TypeFifo:
			if err := unix.Mkfifo(target, uint32(mode)); err != nil {
				return err
			}
		default:
			// Device nodes in an image are never used: the runtime mounts
			// its own /dev.
			continue
		}
		if err := chownMode(target, hdr); err != nil {
			return err
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := chownMode(dirs[i].path, dirs[i].hdr); err != nil {
			return err
		}
	}
	return nil
}

func chownMode(p string, hdr *tar.Header) error {
	if err := os.Lchown(p, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	// Chmod after chown: chown clears the setuid/setgid bits.
	return os.Chmod(p, fileMode(hdr.Mode))
}

func fileMode(m int64) os.FileMode {
	mode := os.FileMode(m).Perm()
	if m&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

// account is one /etc/passwd entry of an image.
type account struct {
	name     string
	uid, gid uint32
	home     string
}

// resolveUser turns an image or pod user ("65532", "65532:65532", "hl",
// "hl:hl", "") into ids and the home folder as runc does: a name is looked
// up in the image's /etc/passwd and /etc/group, a missing group is the
// account's, HOME is the account's home or "/".
func (img *Image) resolveUser(user string) (uid, gid uint32, home, name string, err error) {
	u, g, hasGroup := strings.Cut(user, ":")
	if u == "" {
		u = "0"
	}
	accounts, err := readPasswd(filepath.Join(img.Root, "etc", "passwd"))
	if err != nil {
		return 0, 0, "", "", err
	}
	var acct *account
	if n, perr := strconv.ParseUint(u, 10, 32); perr == nil {
		uid = uint32(n)
		for i := range accounts {
			if accounts[i].uid == uid {
				acct = &accounts[i]
				break
			}
		}
	} else {
		for i := range accounts {
			if accounts[i].name == u {
				acct = &accounts[i]
				break
			}
		}
		if acct == nil {
			return 0, 0, "", "", fmt.Errorf("user %q is not in the image's /etc/passwd", u)
		}
		uid = acct.uid
	}
	home = "/"
	if acct != nil {
		gid, home, name = acct.gid, acct.home, acct.name
	}
	if hasGroup {
		if n, perr := strconv.ParseUint(g, 10, 32); perr == nil {
			gid = uint32(n)
		} else {
			groups, err := readGroups(filepath.Join(img.Root, "etc", "group"))
			if err != nil {
				return 0, 0, "", "", err
			}
			found := false
			for _, gr := range groups {
				if gr.name == g {
					gid, found = gr.gid, true
				}
			}
			if !found {
				return 0, 0, "", "", fmt.Errorf("group %q is not in the image's /etc/group", g)
			}
		}
	}
	return uid, gid, home, name, nil
}

// memberGroups are the gids of the image's /etc/group entries listing
// name as a member (runc's and containerd's supplementary groups).
func (img *Image) memberGroups(name string) ([]uint32, error) {
	if name == "" {
		return nil, nil
	}
	groups, err := readGroups(filepath.Join(img.Root, "etc", "group"))
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, g := range groups {
		for _, m := range g.members {
			if m == name {
				out = append(out, g.gid)
			}
		}
	}
	return out, nil
}

func readPasswd(p string) ([]account, error) {
	var out []account
	err := readColonFile(p, func(f []string) {
		if len(f) < 7 {
			return
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			return
		}
		out = append(out, account{name: f[0], uid: uint32(uid), gid: uint32(gid), home: f[5]})
	})
	return out, err
}

type group struct {
	name    string
	gid     uint32
	members []string
}

func readGroups(p string) ([]group, error) {
	var out []group
	err := readColonFile(p, func(f []string) {
		if len(f) < 4 {
			return
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return
		}
		var members []string
		if f[3] != "" {
			members = strings.Split(f[3], ",")
		}
		out = append(out, group{name: f[0], gid: uint32(gid), members: members})
	})
	return out, err
}

func readColonFile(p string, each func([]string)) error {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		each(strings.Split(line, ":"))
	}
	return sc.Err()
}

package node

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"runtime"
	"sort"
)

// Image is a single-layer image made of a few files, for the programs the
// tests build themselves (the pause program, small servers and clients).
// The shipped Sonde image is built from the Dockerfile instead (make image).
type Image struct {
	// Ref is the image's name, as pods name it: "sonde.test/pause:1".
	Ref string
	// Files maps an absolute path in the image to the file on this
	// machine to copy there, with the mode it has here.
	Files map[string]string
	// Entrypoint and User go into the image's configuration.
	Entrypoint []string
	User       string
}

// WriteArchive writes the image as an OCI image layout in a tar archive,
// which containerd's import reads. The layer is an uncompressed tar with
// zero times and root ownership, so the same files give the same digest.
func (im Image) WriteArchive(file string) error {
	layer, err := im.layer()
	if err != nil {
		return err
	}
	layerSum := sha256.Sum256(layer)
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      "1970-01-01T00:00:00Z",
		"config": map[string]any{
			"Entrypoint": im.Entrypoint,
			"User":       im.User,
			"Env":        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(layerSum[:])}},
	})
	if err != nil {
		return err
	}
	desc := func(mediaType string, b []byte) map[string]any {
		sum := sha256.Sum256(b)
		return map[string]any{"mediaType": mediaType, "digest": "sha256:" + hex.EncodeToString(sum[:]), "size": len(b)}
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        desc("application/vnd.oci.image.config.v1+json", config),
		"layers":        []any{desc("application/vnd.oci.image.layer.v1.tar", layer)},
	})
	if err != nil {
		return err
	}
	md := desc("application/vnd.oci.image.manifest.v1+json", manifest)
	md["annotations"] = map[string]string{
		// containerd's import names the image after the first; the second
		// is the OCI layout's own (a tag, or as here a full reference).
		"io.containerd.image.name":          im.Ref,
		"org.opencontainers.image.ref.name": im.Ref,
	}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{md}})
	if err != nil {
		return err
	}

	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	blob := func(b []byte) error {
		sum := sha256.Sum256(b)
		return add("blobs/sha256/"+hex.EncodeToString(sum[:]), b)
	}
	for _, step := range []func() error{
		func() error { return add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)) },
		func() error { return add("index.json", index) },
		func() error { return blob(manifest) },
		func() error { return blob(config) },
		func() error { return blob(layer) },
	} {
		if err := step(); err != nil {
			return fmt.Errorf("writing image %s: %w", im.Ref, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(file, out.Bytes(), 0o644)
}

func (im Image) layer() ([]byte, error) {
	names := make([]string, 0, len(im.Files))
	for n := range im.Files {
		if !path.IsAbs(n) {
			return nil, fmt.Errorf("image %s: %q is not an absolute path", im.Ref, n)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	var mkdirs func(d string) error
	mkdirs = func(d string) error {
		if d == "/" || dirs[d] {
			return nil
		}
		if err := mkdirs(path.Dir(d)); err != nil {
			return err
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Name: d[1:] + "/", Mode: 0o755, Typeflag: tar.TypeDir})
	}
	// Programs often want a writable /tmp; a read-only root filesystem
	// gets an emptyDir mounted there instead.
	if err := mkdirs("/tmp"); err != nil {
		return nil, err
	}
	for _, n := range names {
		b, err := os.ReadFile(im.Files[n])
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", im.Ref, err)
		}
		fi, err := os.Stat(im.Files[n])
		if err != nil {
			return nil, err
		}
		if err := mkdirs(path.Dir(n)); err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: n[1:], Mode: int64(fi.Mode().Perm()), Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"
)

//go:embed static templates
var files embed.FS

// asset is an embedded static file. Its URL carries a hash of its content, so it can be
// cached for a year and still change with a new build.
type asset struct {
	body        []byte
	contentType string
	etag        string
	version     string
}

type assets struct {
	byName map[string]*asset
}

func loadAssets() (*assets, error) {
	as := &assets{byName: map[string]*asset{}}
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		v := hex.EncodeToString(sum[:6])
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		as.byName[path.Base(p)] = &asset{body: body, contentType: ct, etag: `"` + v + `"`, version: v}
		return nil
	})
	return as, err
}

// url is the address of an embedded asset, versioned by content.
func (as *assets) url(name string) string {
	a, ok := as.byName[name]
	if !ok {
		return Prefix + "static/" + name
	}
	return Prefix + "static/" + name + "?v=" + a.version
}

func (as *assets) serve(w http.ResponseWriter, r *http.Request) {
	a, ok := as.byName[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

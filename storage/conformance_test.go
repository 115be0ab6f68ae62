package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/storage/miniotest"
)

// testStore runs the behaviour every ObjectStore must have. Each backend's test calls it.
func testStore(t *testing.T, st ObjectStore) {
	ctx := context.Background()
	t.Run("put get stat", func(t *testing.T) {
		body := []byte("电子文件封装包 bytes")
		info, err := st.Put(ctx, "packages/F1/2025/a.eep", bytes.NewReader(body), int64(len(body)), PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != int64(len(body)) {
			t.Fatalf("size %d", info.Size)
		}
		rc, gi, err := st.Get(ctx, "packages/F1/2025/a.eep")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, body) || gi.Size != int64(len(body)) {
			t.Fatalf("got %q", got)
		}
		rr, err := st.GetRange(ctx, "packages/F1/2025/a.eep", 3, 6)
		if err != nil {
			t.Fatal(err)
		}
		part, _ := io.ReadAll(rr)
		rr.Close()
		if !bytes.Equal(part, body[3:9]) {
			t.Fatalf("range got %q want %q", part, body[3:9])
		}
		if _, err := st.GetRange(ctx, "packages/F1/2025/a.eep", 3, int64(len(body))); !errors.Is(err, ErrBadRange) {
			t.Fatalf("range past the end: %v", err)
		}
	})
	t.Run("never overwrites", func(t *testing.T) {
		if _, err := st.Put(ctx, "packages/F1/2025/a.eep", strings.NewReader("other"), -1, PutOptions{}); !errors.Is(err, ErrExists) {
			t.Fatalf("overwrite: %v", err)
		}
		rc, _, _ := st.Get(ctx, "packages/F1/2025/a.eep")
		got, _ := io.ReadAll(rc)
		rc.Close()
		if string(got) == "other" {
			t.Fatal("object was replaced")
		}
	})
	t.Run("concurrent puts of one key: exactly one wins", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := st.Put(ctx, "race/x", strings.NewReader("v"), 1, PutOptions{}); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, ErrExists) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d puts won", wins)
		}
	})
	t.Run("failed put leaves nothing", func(t *testing.T) {
		if _, err := st.Put(ctx, "bad/short", strings.NewReader("abc"), 10, PutOptions{}); !errors.Is(err, ErrSizeChange) {
			t.Fatalf("short body: %v", err)
		}
		if _, err := st.Stat(ctx, "bad/short"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("short body left an object: %v", err)
		}
		if _, err := st.Put(ctx, "bad/failing", io.MultiReader(strings.NewReader("abc"), errReader{}), -1, PutOptions{}); err == nil {
			t.Fatal("reader error not reported")
		}
		if _, err := st.Stat(ctx, "bad/failing"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("failing body left an object: %v", err)
		}
	})
	t.Run("bad keys", func(t *testing.T) {
		for _, k := range []string{"", "/abs", "../x", "a/../../x", "a//b", "a/./b", "a\\b", "a/", "a/.tmp-1"} {
			if _, err := st.Put(ctx, k, strings.NewReader("x"), 1, PutOptions{}); !errors.Is(err, ErrBadKey) {
				t.Errorf("key %q: %v", k, err)
			}
		}
	})
	t.Run("dirs and list after", func(t *testing.T) {
		w, ok := st.(Walker)
		if !ok {
			t.Fatal("the store cannot list after a key")
		}
		for _, k := range []string{"w/F1/2024/001.eep", "w/F1/2025/001.eep", "w/F1/2025/005.eep", "w/F1/2025/009.eep", "w/F2/2025/007.eep", "w/top"} {
			if _, err := st.Put(ctx, k, strings.NewReader(k), -1, PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		dirs, err := w.Dirs(ctx, "w/")
		if err != nil || strings.Join(dirs, ",") != "w/F1/,w/F2/" {
			t.Fatalf("dirs %v %v", dirs, err)
		}
		if d, err := w.Dirs(ctx, "w/none/"); err != nil || len(d) != 0 {
			t.Fatalf("dirs of nothing %v %v", d, err)
		}
		for _, c := range []struct{ prefix, after, want string }{
			{"w/F1/2025/", "w/F1/2025/005", "w/F1/2025/005.eep,w/F1/2025/009.eep"},
			{"w/F1/2025/", "w/F1/2025/005.eep", "w/F1/2025/009.eep"},
			{"w/", "w/F1/2025/006", "w/F1/2025/009.eep,w/F2/2025/007.eep,w/top"},
			{"w/F1/", "w/F1/2025/009.eep", ""},
		} {
			var keys []string
			if err := w.ListAfter(ctx, c.prefix, c.after, func(o ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(keys, ","); got != c.want {
				t.Errorf("list %s after %s: %s, want %s", c.prefix, c.after, got, c.want)
			}
		}
	})
	t.Run("list and delete", func(t *testing.T) {
		for _, k := range []string{"l/b", "l/a", "l/c/d", "m/x"} {
			if _, err := st.Put(ctx, k, strings.NewReader(k), -1, PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		var keys []string
		if err := st.List(ctx, "l/", func(o ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		if strings.Join(keys, ",") != "l/a,l/b,l/c/d" {
			t.Fatalf("list: %v", keys)
		}
		if err := st.List(ctx, "nothing/here/", func(ObjectInfo) error { t.Fatal("listed"); return nil }); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, "l/a"); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, "l/a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if _, _, err := st.Get(ctx, "l/a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get deleted: %v", err)
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestFSConformance(t *testing.T) {
	st, err := OpenFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	testStore(t, st)
}

func TestS3Conformance(t *testing.T) {
	srv := miniotest.Start(t)
	st, err := OpenS3(context.Background(), S3Config{Endpoint: srv.Endpoint, Bucket: "dangan-conformance", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	testStore(t, st)
	testRetainer(t, st, st)
}

// testRetainer runs what every store with its own retention (WORM) must do.
func testRetainer(t *testing.T, st ObjectStore, r Retainer) {
	ctx := context.Background()
	t.Run("retention blocks delete and only grows", func(t *testing.T) {
		until := time.Now().Add(24 * time.Hour).Truncate(time.Second)
		if _, err := st.Put(ctx, "worm/a", strings.NewReader("kept"), 4, PutOptions{RetainUntil: until}); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, "worm/a"); !errors.Is(err, ErrRetained) {
			t.Fatalf("delete of a retained object: %v", err)
		}
		if err := r.Retain(ctx, "worm/a", until.Add(-time.Hour)); !errors.Is(err, ErrRetentionShortened) {
			t.Fatalf("shortening: %v", err)
		}
		if err := r.Retain(ctx, "worm/a", until.Add(48*time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, hold, err := r.Retention(ctx, "worm/a")
		if err != nil || hold || !got.Equal(until.Add(48*time.Hour)) {
			t.Fatalf("retention %v hold %v err %v", got, hold, err)
		}
	})
	t.Run("legal hold blocks delete until released", func(t *testing.T) {
		if _, err := st.Put(ctx, "worm/held", strings.NewReader("held"), 4, PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := r.SetLegalHold(ctx, "worm/held", true); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, "worm/held"); !errors.Is(err, ErrRetained) {
			t.Fatalf("delete under a legal hold: %v", err)
		}
		if err := r.SetLegalHold(ctx, "worm/held", false); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, "worm/held"); err != nil {
			t.Fatalf("delete after the hold was released: %v", err)
		}
	})
}

// A write interrupted by a crash leaves its temporary file in the staging directory, which
// the next open empties without walking the objects; the staging directory and an older
// store's stray temporary files are never listed as objects.
func TestFSTemporaryFilesAfterACrash(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.Put(ctx, "packages/a/1.eep", strings.NewReader("one"), 3, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, staging, ".tmp-123")
	stray := filepath.Join(dir, "packages", "a", ".tmp-456") // where an older dangan wrote them
	os.WriteFile(left, []byte("half a package"), 0o644)
	os.WriteFile(stray, []byte("half a package"), 0o644)
	if st, err = OpenFS(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the leftover temporary file survived the open: %v", err)
	}
	var keys []string
	st.List(ctx, "", func(o ObjectInfo) error { keys = append(keys, o.Key); return nil })
	if fmt.Sprint(keys) != "[packages/a/1.eep]" {
		t.Fatalf("listed %v", keys)
	}
	if dirs, _ := st.Dirs(ctx, "packages/"); fmt.Sprint(dirs) != "[packages/a/]" {
		t.Fatalf("dirs %v", dirs)
	}
}

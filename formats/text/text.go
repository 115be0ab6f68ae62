// Package text extracts the words of an archival rendition for the full-text search: a
// PDF's text layer (with poppler's pdftotext), an OFD's text objects (TextCode) and an XML
// document's character data. Extraction is bounded: at most Limit bytes of text, at most
// MaxInput bytes read, and a deadline for an external tool.
//
//	words, err := text.Extract(ctx, r, "application/pdf") // ErrUnsupported for images
package text

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds of one extraction.
const (
	Limit    = 256 << 10 // bytes of text kept
	MaxInput = 64 << 20  // bytes of a document read
	Timeout  = 20 * time.Second
)

// Errors callers decide on.
var (
	ErrUnsupported = errors.New("text: no text in this format")
	ErrNoTool      = errors.New("text: pdftotext (poppler-utils) is not installed")
	ErrTooLarge    = fmt.Errorf("text: the document is larger than %d MiB", MaxInput>>20)
)

// Extract returns up to Limit bytes of the text of a document of the given MIME type.
func Extract(ctx context.Context, r io.Reader, mime string) (string, error) {
	switch mime {
	case "application/pdf":
		return pdf(ctx, r)
	case "application/ofd":
		return ofd(r)
	case "application/xml", "text/xml":
		return xmlText(io.LimitReader(r, MaxInput))
	}
	return "", ErrUnsupported
}

// collector keeps text up to Limit bytes, whole runes, words separated by a space.
type collector struct{ b strings.Builder }

func (c *collector) add(s string) bool {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return c.b.Len() < Limit
	}
	if c.b.Len() > 0 {
		c.b.WriteByte(' ')
	}
	if room := Limit - c.b.Len(); len(s) > room {
		for room > 0 && !utf8.RuneStart(s[room]) {
			room--
		}
		s = s[:room]
	}
	c.b.WriteString(s)
	return c.b.Len() < Limit
}

func pdf(ctx context.Context, r io.Reader) (string, error) {
	tool, err := exec.LookPath("pdftotext")
	if err != nil {
		return "", ErrNoTool
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	in := &countingReader{r: r}
	cmd := exec.CommandContext(ctx, tool, "-q", "-enc", "UTF-8", "-", "-")
	cmd.Stdin = io.LimitReader(in, MaxInput+1)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", fmt.Errorf("text: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("text: pdftotext: %w", err)
	}
	raw, _ := io.ReadAll(io.LimitReader(out, 4*Limit)) // line breaks and spaces fold away
	io.Copy(io.Discard, out)
	err = cmd.Wait()
	if in.n > MaxInput {
		return "", ErrTooLarge
	}
	if ctx.Err() != nil {
		return "", fmt.Errorf("text: pdftotext gave no result within %s", Timeout)
	}
	if err != nil {
		return "", fmt.Errorf("text: pdftotext: %w", err)
	}
	var c collector
	c.add(string(bytes.ToValidUTF8(raw, nil)))
	return c.b.String(), nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ofd reads the text objects of an OFD's page contents in package order.
func ofd(r io.Reader) (string, error) {
	f, err := os.CreateTemp("", "dangan-text-*.ofd")
	if err != nil {
		return "", fmt.Errorf("text: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, io.LimitReader(r, MaxInput+1))
	if err != nil {
		return "", fmt.Errorf("text: %w", err)
	}
	if n > MaxInput {
		return "", ErrTooLarge
	}
	z, err := zip.NewReader(f, n)
	if err != nil {
		return "", fmt.Errorf("text: the OFD does not open: %w", err)
	}
	var c collector
	for _, e := range z.File {
		if !strings.HasSuffix(e.Name, "Content.xml") || !strings.Contains(e.Name, "Pages/") {
			continue
		}
		rc, err := e.Open()
		if err != nil {
			return "", fmt.Errorf("text: %s: %w", e.Name, err)
		}
		more, err := elementText(io.LimitReader(rc, MaxInput), &c, "TextCode")
		rc.Close()
		if err != nil {
			return "", fmt.Errorf("text: %s: %w", e.Name, err)
		}
		if !more {
			break
		}
	}
	return c.b.String(), nil
}

func xmlText(r io.Reader) (string, error) {
	var c collector
	if _, err := elementText(r, &c, ""); err != nil {
		return "", fmt.Errorf("text: %w", err)
	}
	return c.b.String(), nil
}

// elementText adds the character data inside elements named local (any element when
// empty) to c; false when c is full.
func elementText(r io.Reader, c *collector, local string) (bool, error) {
	d := xml.NewDecoder(r)
	d.Strict = false
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return true, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if local == "" || t.Name.Local == local || depth > 0 {
				depth++
			}
		case xml.EndElement:
			if depth > 0 {
				depth--
			}
		case xml.CharData:
			if (local == "" || depth > 0) && !c.add(string(t)) {
				return false, nil
			}
		}
	}
}

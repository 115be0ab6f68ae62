package text

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dangan-archive/dangan/internal/testenv"
)

func extractFile(t *testing.T, path, mime string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := Extract(context.Background(), f, mime)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// Text from documents other software made: OFDs from ofdrw and a tax authority's invoice,
// a PDF with a Chinese text layer.
func TestTextOfOtherSoftwaresDocuments(t *testing.T) {
	testenv.Tool(t, "pdftotext")
	for _, c := range []struct{ path, mime, want string }{
		{"../../../shared/corpus/ofd/helloworld.ofd", "application/ofd", "你好呀，OFD Reader&Writer！"},
		{"../../../shared/corpus/signed/ofd-taxinvoice-zhejiang-2020-gomain-sesv4.ofd", "application/ofd", "浙江增值税电子普通发票"},
		{"../../../shared/corpus/signed/pdf-sm2-gm-pkcs7-badsig.pdf", "application/pdf", "PDF 电子签章开发文档"},
		{"../../examples/case-001/decision.pdf", "application/pdf", "Decision: licence granted."},
	} {
		if got := extractFile(t, c.path, c.mime); !strings.Contains(got, c.want) {
			t.Errorf("%s: %.200q lacks %q", c.path, got, c.want)
		}
	}
}

func TestXMLTextAndBounds(t *testing.T) {
	got, err := Extract(context.Background(), strings.NewReader(`<?xml version="1.0"?><办件><事项>食品经营许可</事项><意见>同意
	受理</意见></办件>`), "application/xml")
	if err != nil || got != "食品经营许可 同意 受理" {
		t.Fatalf("%q %v", got, err)
	}
	big := "<a>" + strings.Repeat("许可证 ", Limit) + "</a>"
	got, _ = Extract(context.Background(), strings.NewReader(big), "application/xml")
	if len(got) > Limit || len(got) < Limit-8 || !strings.HasPrefix(got, "许可证 许可证") || !utf8.ValidString(got) {
		t.Errorf("bounded text: %d bytes, ends %q", len(got), got[len(got)-10:])
	}
	if _, err := Extract(context.Background(), strings.NewReader("\xff\xd8\xff"), "image/jpeg"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("an image: %v", err)
	}
	if _, err := Extract(context.Background(), strings.NewReader("PK not a zip"), "application/ofd"); err == nil {
		t.Error("a broken OFD gave text")
	}
}

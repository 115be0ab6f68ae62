package certdoc

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pdfcpu/pdfcpu/pkg/api"

	"github.com/dangan-archive/dangan/formats"
	"github.com/dangan-archive/dangan/formats/ofd"
	"github.com/dangan-archive/dangan/internal/testenv"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

func sample() *Certificate {
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	return &Certificate{
		Identifier: "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",
		Title:      "食品经营许可证", Number: "JY14301020012345",
		Holder: "张喆小吃店", HolderCode: "92430102MA4L0XXX1A", HolderCodeType: "001",
		Issuer: "某县市场监督管理局", IssuerCode: "11430000006122244L",
		IssuedAt: day, ValidFrom: day, ValidUntil: day.AddDate(5, 0, 0),
		Fields: []Field{{"经营场所", "某县城关镇人民路18号"}, {"主体业态", "小餐饮"}},
	}
}

func TestPDFOpensAndItsTextExtracts(t *testing.T) {
	doc, _, err := PDF(sample())
	if err != nil {
		t.Fatal(err)
	}
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	if err := api.Validate(bytes.NewReader(doc), conf); err != nil {
		t.Fatalf("pdfcpu refuses the certificate: %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(dir+"/c.pdf", doc, 0o644)
	out, err := exec.Command(testenv.Tool(t, "pdftotext"), "-enc", "UTF-8", dir+"/c.pdf", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	for _, want := range []string{"食品经营许可证", "张喆小吃店", "某县市场监督管理局", "JY14301020012345"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("pdftotext does not return %q:\n%s", want, out)
		}
	}
	fonts, err := exec.Command(testenv.Tool(t, "pdffonts"), dir+"/c.pdf").CombinedOutput()
	if err != nil {
		t.Fatalf("pdffonts: %v\n%s", err, fonts)
	}
	lines := strings.Split(strings.TrimSpace(string(fonts)), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], "CID TrueType") || !strings.Contains(lines[2], " yes yes yes ") {
		t.Errorf("the font must be an embedded subset with a ToUnicode map:\n%s", fonts)
	}
}

func TestUnprintableTextIsRefused(t *testing.T) {
	c := sample()
	c.Holder = "店\U0001F600"
	if _, _, err := PDF(c); err == nil || !strings.Contains(err.Error(), "cannot print") {
		t.Fatalf("err = %v", err)
	}
}

func TestOFDIsAWellFormedPackage(t *testing.T) {
	parts, err := OFD(sample())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ofd.Write(&buf, parts); err != nil {
		t.Fatal(err)
	}
	info, err := formats.CheckOFD(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatalf("the structure check refuses the OFD: %v", err)
	}
	if info.Pages != 1 {
		t.Errorf("pages = %d", info.Pages)
	}
	var content string
	for _, p := range parts {
		if strings.HasSuffix(p.Name, "Content.xml") {
			content = string(p.Data)
		}
	}
	if !strings.Contains(content, ">张喆小吃店</ofd:TextCode>") {
		t.Error("the holder is not a TextCode")
	}
}

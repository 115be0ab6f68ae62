package redact

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The shipped policy removes what a county's case text holds of a person, and leaves what
// only looks like it: a 档号, a case number, an amount, a date.
func TestShippedPolicy(t *testing.T) {
	p, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in, kind string
		gone     string
	}{
		{"申请人身份证号码：610102199001011234，", "身份证号", "610102199001011234"},
		{"身份证号 61010219900101123X 已核验", "身份证号", "61010219900101123X"},
		{"旧证号610102900101123", "身份证号", "610102900101123"},
		{"联系电话13912345678。", "手机号码", "13912345678"},
		{"手机 +86 139 1234 5678", "手机号码", "139 1234 5678"},
		{"办公电话0912-5221234", "固定电话", "0912-5221234"},
		{"住址：陕西省榆林市清涧县宽州镇解放路12号", "住址", "解放路12号"},
		{"家住清涧县石咀驿镇王家村3组", "住址", "王家村3组"},
	}
	for _, c := range cases {
		out, removed := p.Text(c.in, nil)
		if strings.Contains(out, c.gone) || removed[c.kind] != 1 {
			t.Errorf("%q → %q, removed %v: want one %s gone", c.in, out, removed, c.kind)
		}
	}
	keep := "档号 F001-2026-D30-0001，业务编号 SX-2026-000118，金额 12000 元，2026-03-01 办结，统一社会信用代码 91610830MA6Y00001G"
	if out, removed := p.Text(keep, nil); out != keep || len(removed) != 0 {
		t.Errorf("text without personal data changed: %q, removed %v", out, removed)
	}
	out, removed := p.Text("张三申请，张三签字。", []string{"张三", ""})
	if strings.Contains(out, "张三") || removed[KnownKind] != 2 {
		t.Errorf("the applicant's name: %q %v", out, removed)
	}
	if !p.Drops("申请人证件号码") || p.Drops("题名") {
		t.Error("the metadata the public copy leaves out")
	}
}

func TestBadPolicyFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown-field.json": `{"version":"x","rules":[{"kind":"k","pattern":"a","mask":"m"}],"extra":1}`,
		"no-rules.json":      `{"version":"x","rules":[]}`,
		"bad-regexp.json":    `{"version":"x","rules":[{"kind":"k","pattern":"(","mask":"m"}]}`,
		"no-mask.json":       `{"version":"x","rules":[{"kind":"k","pattern":"a"}]}`,
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(body), 0o644)
		if _, err := Load(path); err == nil {
			t.Errorf("%s loaded", name)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("a missing file loaded")
	}
}

package archive

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// A package's metadata as its EEP holds it, read without its documents' data: the fields
// under 被签名对象 agree with the record, the agents name the department and the applicant,
// the handling steps are the case's, and the read is logged; another department does not
// reach it.
func TestMetadataAsTheEEPHoldsIt(t *testing.T) {
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), NoBackgroundAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := benchCaseFor("MD-1")
	c.Applicant = Applicant{Name: "李晓明", Kind: "个人", IDType: "111", IDNumber: "610102199001011231"}
	c.Steps = []Step{{Name: "受理", Actor: "王芳", At: c.AcceptedAt, Opinion: "材料齐全，予以受理"}}
	res, err := a.Ingest(t.Context(), dept, c, pdfUpload(t, "../examples/case-001/decision.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	p := res.Package
	got, md, err := a.Metadata(t.Context(), dept, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != p.ID {
		t.Errorf("the record of %s came with %s's metadata", got.ID, p.ID)
	}
	const ent = "封装内容/文件实体块/文件实体/"
	for path, want := range map[string]string{ent + "档号/年度": fmt.Sprint(p.Year), ent + "档号/全宗号": p.Fonds, ent + "档号/保管期限": p.Retention,
		ent + "内容描述/题名": p.Title, ent + "存储位置": p.Key} {
		if md.Fields[path] != want {
			t.Errorf("%s: %q, the record says %q", path, md.Fields[path], want)
		}
	}
	var agents []string
	for _, ag := range md.Agents {
		agents = append(agents, ag.Kind+":"+ag.Name)
	}
	if !slices.Contains(agents, "单位:"+c.Department.Name) || !slices.Contains(agents, "个人:李晓明") || !slices.Contains(agents, "个人:王芳") {
		t.Errorf("agents %v", agents)
	}
	if len(md.Documents) != 1 || len(md.Documents[0].Encodings) != 2 || md.Documents[0].Encodings[0].SM3 != p.Documents[0].Encoded[0].SM3 ||
		md.Documents[0].Encodings[0].Size != p.Documents[0].Encoded[0].Size {
		t.Errorf("documents %+v", md.Documents)
	}
	reads, _, err := a.ReadLog(t.Context(), Principal{Role: RoleArchive}, ReadFilter{Package: p.ID, Limit: 10})
	if err != nil || len(reads) != 1 || reads[0].What != "metadata" {
		t.Errorf("the read log: %+v %v", reads, err)
	}
	if _, _, err := a.Metadata(t.Context(), deptB, p.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("another department read the metadata: %v", err)
	}
}

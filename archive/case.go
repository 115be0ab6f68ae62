package archive

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dangan-archive/dangan/formats"
)

// Case is a finished government-service case (办件) as a department pushes it.
type Case struct {
	CaseNo      string     `json:"case_no"`
	Item        Item       `json:"item"`
	Department  Department `json:"department"`
	Applicant   Applicant  `json:"applicant"`
	CaseType    string     `json:"case_type"`
	AcceptedAt  time.Time  `json:"accepted_at"`
	FinishedAt  time.Time  `json:"finished_at"`
	Result      Result     `json:"result"`
	Retention   string     `json:"retention"`
	Sharing     Sharing    `json:"sharing"`
	Steps       []Step     `json:"steps"`
	Documents   []CaseDoc  `json:"documents"`
	Description string     `json:"description,omitempty"`
}

// Item is the service item (事项).
type Item struct {
	Code     string `json:"code"`
	Name     string `json:"name"`
	Category string `json:"category"`
}

// Department is the department that handled the case.
type Department struct {
	Name string `json:"name"`
	USCC string `json:"uscc"`
}

// Applicant is who applied. IDNumber is personal data: it is kept in the package and never
// returned by the API.
type Applicant struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`    // 个人 | 法人 | 其他组织
	IDType   string `json:"id_type"` // 111 公民身份号码, 001 统一社会信用代码, ...
	IDNumber string `json:"id_number"`
}

// Result is the outcome (办理结果).
type Result struct {
	Status   string `json:"status"`
	Decision string `json:"decision"`
	Opinion  string `json:"opinion"`
}

// Sharing is the record's sharing scope and conditions.
type Sharing struct {
	Scope      string `json:"scope"`
	Conditions string `json:"conditions"`
}

// Step is one step of the handling (办理过程).
type Step struct {
	Name    string    `json:"name"`
	Actor   string    `json:"actor"`
	ActorID string    `json:"actor_id"`
	At      time.Time `json:"at"`
	Opinion string    `json:"opinion"`
}

// CaseDoc lists one document: File names the multipart part that carries it.
type CaseDoc struct {
	File  string `json:"file"`
	Title string `json:"title"`
	Kind  string `json:"kind"`
	Main  bool   `json:"main"`
}

// FieldError names one invalid field of a case.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// ValidationError lists every invalid field; it wraps ErrInvalidCase.
type ValidationError struct{ Fields []FieldError }

func (e *ValidationError) Error() string {
	var parts []string
	for _, f := range e.Fields {
		parts = append(parts, f.Field+": "+f.Detail)
	}
	return "invalid case: " + strings.Join(parts, "; ")
}

func (e *ValidationError) Unwrap() error { return ErrInvalidCase }

// Retention codes (STANDARDS.md §3): permanent, 30 years, 10 years.
var retentionCodes = map[string]string{"Y": "永久", "D30": "定期30年", "D10": "定期10年"}

var (
	caseNoShape   = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z_.-]{0,63}$`)
	itemCodeShape = regexp.MustCompile(`^[0-9A-Za-z]{1,64}$`)
	partShape     = regexp.MustCompile(`^[0-9A-Za-z_.-]{1,64}$`)
	caseTypes     = map[string]bool{"即办件": true, "承诺件": true, "补办件": true, "上报件": true, "联办件": true}
)

// Validate checks a case as received from department dept (its USCC) at time now. It
// returns a *ValidationError naming every bad field.
func (c *Case) Validate(now time.Time) error {
	var errs []FieldError
	bad := func(field, format string, a ...any) {
		errs = append(errs, FieldError{field, fmt.Sprintf(format, a...)})
	}
	text := func(field, v string, required bool, max int) {
		switch {
		case v == "" && required:
			bad(field, "is required")
		case !formats.ValidXMLText(v):
			bad(field, "contains control characters or invalid UTF-8")
		case utf8.RuneCountInString(v) > max:
			bad(field, "is longer than %d characters", max)
		}
	}
	if !caseNoShape.MatchString(c.CaseNo) {
		bad("case_no", "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if !itemCodeShape.MatchString(c.Item.Code) {
		bad("item.code", "must be 1-64 letters or digits")
	}
	text("item.name", c.Item.Name, true, 200)
	text("item.category", c.Item.Category, false, 50)
	text("department.name", c.Department.Name, true, 200)
	if err := CheckUSCC(c.Department.USCC); err != nil {
		bad("department.uscc", "%v", err)
	}
	text("applicant.name", c.Applicant.Name, true, 200)
	text("applicant.kind", c.Applicant.Kind, false, 20)
	switch c.Applicant.IDType {
	case "111":
		if err := CheckResidentID(c.Applicant.IDNumber); err != nil {
			bad("applicant.id_number", "%v", err)
		}
	case "001":
		if err := CheckUSCC(c.Applicant.IDNumber); err != nil {
			bad("applicant.id_number", "%v", err)
		}
	case "":
		if c.Applicant.IDNumber != "" {
			bad("applicant.id_type", "is required when id_number is given")
		}
	default:
		text("applicant.id_number", c.Applicant.IDNumber, true, 64)
	}
	if c.CaseType != "" && !caseTypes[c.CaseType] {
		bad("case_type", "must be one of 即办件, 承诺件, 补办件, 上报件, 联办件")
	}
	if c.AcceptedAt.IsZero() {
		bad("accepted_at", "is required (RFC 3339 date-time)")
	}
	switch {
	case c.FinishedAt.IsZero():
		bad("finished_at", "is required (RFC 3339 date-time)")
	case !c.AcceptedAt.IsZero() && !c.FinishedAt.After(c.AcceptedAt):
		bad("finished_at", "must be after accepted_at")
	case c.FinishedAt.After(now.Add(5 * time.Minute)):
		bad("finished_at", "is in the future: only finished cases are archived")
	}
	text("result.status", c.Result.Status, true, 50)
	text("result.decision", c.Result.Decision, false, 200)
	text("result.opinion", c.Result.Opinion, false, 2000)
	if _, ok := retentionCodes[c.Retention]; !ok {
		bad("retention", "unknown retention code %q: use Y (永久), D30 or D10", c.Retention)
	}
	text("sharing.scope", c.Sharing.Scope, true, 100)
	if _, err := sharingOf(c.Sharing.Scope); c.Sharing.Scope != "" && err != nil {
		bad("sharing.scope", "is %q: use %s, %s or %s", c.Sharing.Scope, SharingOpen, SharingConditional, SharingNone)
	}
	text("sharing.conditions", c.Sharing.Conditions, false, 1000)
	text("description", c.Description, false, 2000)
	for i, s := range c.Steps {
		f := fmt.Sprintf("steps[%d]", i)
		text(f+".name", s.Name, true, 100)
		text(f+".actor", s.Actor, true, 100)
		text(f+".actor_id", s.ActorID, false, 64)
		text(f+".opinion", s.Opinion, false, 2000)
		if s.At.IsZero() {
			bad(f+".at", "is required (RFC 3339 date-time)")
		}
	}
	if len(c.Documents) == 0 {
		bad("documents", "at least one document is required")
	}
	if len(c.Documents) > 1000 {
		bad("documents", "at most 1000 documents per case")
	}
	seen := map[string]bool{}
	for i, d := range c.Documents {
		f := fmt.Sprintf("documents[%d]", i)
		switch {
		case !partShape.MatchString(d.File):
			bad(f+".file", "must be 1-64 letters, digits, '.', '_' or '-' (it names a multipart part)")
		case d.File == "case":
			bad(f+".file", `"case" is the name of the metadata part`)
		case seen[d.File]:
			bad(f+".file", "part %q is listed twice", d.File)
		}
		seen[d.File] = true
		text(f+".title", d.Title, true, 200)
		text(f+".kind", d.Kind, false, 50)
	}
	if len(errs) > 0 {
		return &ValidationError{errs}
	}
	return nil
}

// CheckFileName refuses file names that could name a path: dangan stores only the base name.
func CheckFileName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("the part has no file name")
	case strings.ContainsAny(name, "/\\\x00"), name == ".", name == "..", path.IsAbs(name):
		return fmt.Errorf("file name %q contains a path", name)
	case !formats.ValidXMLText(name), strings.ContainsAny(name, "\r\n\t"):
		return fmt.Errorf("file name %q contains control characters", name)
	case utf8.RuneCountInString(name) > 255:
		return fmt.Errorf("file name is longer than 255 characters")
	}
	return nil
}

const usccChars = "0123456789ABCDEFGHJKLMNPQRTUWXY"

var usccWeights = [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// CheckUSCC checks a unified social credit code (GB 32100-2015): 18 characters from the
// code's alphabet with a MOD 31 check character.
func CheckUSCC(s string) error {
	if len(s) != 18 {
		return fmt.Errorf("a unified social credit code has 18 characters, got %d", utf8.RuneCountInString(s))
	}
	want, err := USCCCheckChar(s[:17])
	if err != nil {
		return err
	}
	if s[17] != want {
		return fmt.Errorf("check character is %q, expected %q (GB 32100)", s[17], want)
	}
	return nil
}

// USCCCheckChar computes the check character (MOD 31) for the first 17 characters of a USCC.
func USCCCheckChar(first17 string) (byte, error) {
	if len(first17) != 17 {
		return 0, fmt.Errorf("need the first 17 characters of a unified social credit code, got %d", len(first17))
	}
	sum := 0
	for i := 0; i < 17; i++ {
		v := strings.IndexByte(usccChars, first17[i])
		if v < 0 {
			return 0, fmt.Errorf("character %q at position %d is not allowed in a unified social credit code", first17[i], i+1)
		}
		sum += v * usccWeights[i]
	}
	return usccChars[(31-sum%31)%31], nil
}

var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// CheckResidentID checks an 18-digit citizen identity number (GB 11643-1999): digits, a
// real date of birth, and the MOD 11-2 check character.
func CheckResidentID(s string) error {
	if len(s) != 18 {
		return fmt.Errorf("a citizen identity number has 18 characters, got %d", utf8.RuneCountInString(s))
	}
	sum := 0
	for i := 0; i < 17; i++ {
		if s[i] < '0' || s[i] > '9' {
			return fmt.Errorf("character %d is not a digit", i+1)
		}
		sum += int(s[i]-'0') * idWeights[i]
	}
	if _, err := time.Parse("20060102", s[6:14]); err != nil {
		return fmt.Errorf("date of birth %s is not a date", s[6:14])
	}
	if want := "10X98765432"[sum%11]; s[17] != want && !(want == 'X' && s[17] == 'x') {
		return fmt.Errorf("check character is %q, expected %q (GB 11643)", s[17], want)
	}
	return nil
}

package archive

import (
	"fmt"
	"strings"
)

// Sharing classes (共享范围), after the national classification of government information
// resources. A package's class decides who besides its department and the archive may find
// and read it: any department (unconditional), a department holding a grant from an
// approved use request (conditional), or nobody else (not shared).
const (
	SharingOpen        = "无条件共享"
	SharingConditional = "有条件共享"
	SharingNone        = "不予共享"
)

// sharingNames are the words a case document may use for each class: the classes
// themselves, their English names, and the words departments sent before the classes.
var sharingNames = map[string]string{
	SharingOpen: SharingOpen, "unconditional": SharingOpen,
	SharingConditional: SharingConditional, "conditional": SharingConditional, "政务共享": SharingConditional,
	SharingNone: SharingNone, "none": SharingNone, "not-shared": SharingNone,
}

// sharingOf maps a case document's sharing scope onto its class.
func sharingOf(scope string) (string, error) {
	if c, ok := sharingNames[strings.TrimSpace(scope)]; ok {
		return c, nil
	}
	return "", fmt.Errorf("%w: sharing scope %q is not one of %s, %s, %s", ErrInvalidCase, scope, SharingOpen, SharingConditional, SharingNone)
}

// SharingClass is the class of a recorded scope. Words the classes do not know (an index
// written before them) are read as conditional: shared only by a grant.
func SharingClass(scope string) string {
	if c, err := sharingOf(scope); err == nil {
		return c
	}
	return SharingConditional
}

package archive

import (
	"context"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/sm4"

	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/storage/index"
)

// Personal data at rest: the applicant's name and identity number are kept in the index
// only encrypted, with SM4-GCM under the archive's data key, and the search index holds
// the identity number only as a blind index (HMAC-SM3 under a key derived from the data
// key), so that an exact number can be looked up and no number can be read back.
//
// The data key is 16 random bytes kept wrapped (SM4-GCM) in pki/data-key.json. With
// Config.KeyPassword (DANGAN_KEY_PASSWORD, which encrypts the PKI's keys too) the wrapping
// key is Argon2id of the password, so a backup, which carries pki/, restores only with the
// password; without one (a development archive) it is the random pki/data-kek beside it.

// ErrDataKey is a data key that cannot be unwrapped (a wrong or missing password).
var ErrDataKey = errors.New("the data key does not unwrap")

type dataKeyFile struct {
	Alg     string `json:"alg"`  // SM4-GCM
	Wrap    string `json:"wrap"` // argon2id (the key password) or file (pki/data-kek)
	Salt    []byte `json:"salt,omitempty"`
	Nonce   []byte `json:"nonce"`
	Wrapped []byte `json:"wrapped"`
}

func sm4GCM(key []byte) (cipher.AEAD, error) {
	b, err := sm4.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// loadDataKey unwraps the data key in dir, making one on first use.
func loadDataKey(dir string, password []byte) ([]byte, error) {
	path := filepath.Join(dir, "data-key.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return makeDataKey(dir, path, password)
	} else if err != nil {
		return nil, fmt.Errorf("read the data key: %w", err)
	}
	var f dataKeyFile
	if err := json.Unmarshal(data, &f); err != nil || f.Alg != "SM4-GCM" {
		return nil, fmt.Errorf("%s: not a data key", path)
	}
	kek, err := wrappingKey(dir, f, password, false)
	if err != nil {
		return nil, err
	}
	aead, err := sm4GCM(kek)
	if err != nil {
		return nil, err
	}
	key, err := aead.Open(nil, f.Nonce, f.Wrapped, []byte("dangan data key"))
	if err != nil {
		return nil, fmt.Errorf("%w (%s): is DANGAN_KEY_PASSWORD the archive's?", ErrDataKey, path)
	}
	return key, nil
}

func makeDataKey(dir, path string, password []byte) ([]byte, error) {
	key := make([]byte, 16)
	f := dataKeyFile{Alg: "SM4-GCM", Wrap: "file", Nonce: make([]byte, 12)}
	if len(password) > 0 {
		f.Wrap, f.Salt = "argon2id", make([]byte, 16)
		if _, err := rand.Read(f.Salt); err != nil {
			return nil, err
		}
	}
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if _, err := rand.Read(f.Nonce); err != nil {
		return nil, err
	}
	kek, err := wrappingKey(dir, f, password, true)
	if err != nil {
		return nil, err
	}
	aead, err := sm4GCM(kek)
	if err != nil {
		return nil, err
	}
	f.Wrapped = aead.Seal(nil, f.Nonce, key, []byte("dangan data key"))
	data, _ := json.MarshalIndent(f, "", "  ")
	if err := signing.WriteFileAtomic(path, append(data, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write the data key: %w", err)
	}
	return key, nil
}

// wrappingKey is the key the data key is wrapped with.
func wrappingKey(dir string, f dataKeyFile, password []byte, create bool) ([]byte, error) {
	if f.Wrap == "argon2id" {
		if len(password) == 0 {
			return nil, fmt.Errorf("%w: the data key is wrapped with the key password: set DANGAN_KEY_PASSWORD", ErrDataKey)
		}
		return argon2id(password, f.Salt, defaultPasswordCost, 16), nil
	}
	path := filepath.Join(dir, "data-kek")
	if create {
		kek := make([]byte, 16)
		if _, err := rand.Read(kek); err != nil {
			return nil, err
		}
		if err := signing.WriteFileAtomic(path, []byte(hex.EncodeToString(kek)+"\n"), 0o600); err != nil {
			return nil, err
		}
		return kek, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDataKey, err)
	}
	return hex.DecodeString(strings.TrimSpace(string(data)))
}

type personalFields struct {
	Applicant   string `json:"applicant,omitempty"`
	ApplicantID string `json:"applicant_id,omitempty"`
}

// sealCaseText moves the case text's personal fields into Sealed.
func (a *Archive) sealCaseText(ct *index.CaseText) error {
	if ct == nil || ct.Applicant == "" && ct.ApplicantID == "" {
		return nil
	}
	plain, _ := json.Marshal(personalFields{ct.Applicant, ct.ApplicantID})
	nonce := make([]byte, a.personal.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	ct.Sealed = a.personal.Seal(nonce, nonce, plain, []byte("dangan case text"))
	ct.Applicant, ct.ApplicantID = "", ""
	return nil
}

// caseText is a package's case text with its personal fields opened.
func (a *Archive) caseText(id string) (*index.CaseText, error) {
	ct, err := a.index.CaseText(id)
	if err != nil || ct == nil || len(ct.Sealed) == 0 {
		return ct, err
	}
	n := a.personal.NonceSize()
	if len(ct.Sealed) < n {
		return nil, fmt.Errorf("case text of %s: sealed fields too short", id)
	}
	plain, err := a.personal.Open(nil, ct.Sealed[:n], ct.Sealed[n:], []byte("dangan case text"))
	if err != nil {
		return nil, fmt.Errorf("case text of %s: %w", id, ErrDataKey)
	}
	var pf personalFields
	if err := json.Unmarshal(plain, &pf); err != nil {
		return nil, fmt.Errorf("case text of %s: %w", id, err)
	}
	ct.Applicant, ct.ApplicantID, ct.Sealed = pf.Applicant, pf.ApplicantID, nil
	return ct, nil
}

// blindID is what the search index holds of an identity number: HMAC-SM3 under the blind
// key, of the number with its letters in upper case (an X check digit either way).
func (a *Archive) blindID(id string) string {
	id = strings.ToUpper(strings.TrimSpace(id))
	if id == "" {
		return ""
	}
	m := hmac.New(sm3.New, a.blindKey)
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil))
}

// openPersonal loads the data key and derives what it protects.
func (a *Archive) openPersonal(dir string, password []byte) error {
	key, err := loadDataKey(dir, password)
	if err != nil {
		return err
	}
	if a.personal, err = sm4GCM(key); err != nil {
		return err
	}
	m := hmac.New(sm3.New, key)
	m.Write([]byte("dangan blind index"))
	a.blindKey = m.Sum(nil)
	return nil
}

// sealOldCaseTexts seals the personal fields of case texts stored before they were sealed,
// and then has the search index made again (it held the numbers in clear). Once done, a
// state record says so and later starts skip the walk.
func (a *Archive) sealOldCaseTexts() error {
	var done bool
	if err := a.index.Record(index.State, personalSealedKey, &done); err == nil && done {
		return nil
	}
	sealed := 0
	for from := ""; ; {
		var batch []index.Rec
		next := ""
		err := a.index.ForEachRecord(index.CaseTexts, "", from, func(k string, v []byte) error {
			if len(batch) == 1000 {
				next = k
				return index.ErrStop
			}
			var ct index.CaseText
			if err := json.Unmarshal(v, &ct); err != nil {
				return fmt.Errorf("case text of %s: %w", k, err)
			}
			if ct.Applicant == "" && ct.ApplicantID == "" {
				return nil
			}
			if err := a.sealCaseText(&ct); err != nil {
				return err
			}
			batch = append(batch, index.Rec{Bucket: index.CaseTexts, Key: k, Value: ct})
			return nil
		})
		if err != nil && !errors.Is(err, index.ErrStop) {
			return fmt.Errorf("seal the case texts: %w", err)
		}
		if len(batch) > 0 {
			if err := a.index.PutRecords(batch...); err != nil {
				return fmt.Errorf("seal the case texts: %w", err)
			}
			sealed += len(batch)
		}
		if next == "" {
			break
		}
		from = next
	}
	if sealed > 0 {
		a.log.Info("sealed the personal data of earlier case texts; the search index is made again", "cases", sealed)
		if _, err := a.RebuildSearch(context.Background()); err != nil {
			return err
		}
	}
	return a.index.PutRecord(index.State, personalSealedKey, true)
}

const personalSealedKey = "personal-sealed"

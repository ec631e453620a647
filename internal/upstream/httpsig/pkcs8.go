package httpsig

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/scrypt"
)

// Encrypted PKCS#8 (RFC 5958 EncryptedPrivateKeyInfo) with PBES2 (RFC 8018):
// what "openssl genpkey -aes256" and "openssl pkcs8 -topk8" write by
// default since OpenSSL 3, with PBKDF2 or scrypt and AES-CBC. PBES1 (DES,
// RC2) is refused: it is broken, and no current tool writes it by default.

var (
	oidPBES2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
	oidHMACWithSHA1  = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACWithSHA   = map[string]func() hash.Hash{"1.2.840.113549.2.9": sha256.New, "1.2.840.113549.2.10": sha512.New384, "1.2.840.113549.2.11": sha512.New}
	oidAESCBCKeySize = map[string]int{"2.16.840.1.101.3.4.1.2": 16, "2.16.840.1.101.3.4.1.22": 24, "2.16.840.1.101.3.4.1.42": 32}
)

// Bounds on the work a key file may ask for: far above what tools write
// (PBKDF2 2,048 to 600,000 rounds, scrypt N=16384), far below what would
// stall start-up or exhaust memory.
const (
	maxPBKDF2Iterations = 10_000_000
	maxScryptN          = 1 << 20
	maxScryptRP         = 1 << 10
)

type encryptedPrivateKeyInfo struct {
	Algorithm     algorithmIdentifier
	EncryptedData []byte
}

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

type pbes2Params struct {
	KeyDerivationFunc algorithmIdentifier
	EncryptionScheme  algorithmIdentifier
}

type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                 `asn1:"optional"`
	PRF            algorithmIdentifier `asn1:"optional"`
}

type scryptParams struct {
	Salt                     []byte
	CostParameter            int
	BlockSize                int
	ParallelizationParameter int
	KeyLength                int `asn1:"optional"`
}

// decryptPKCS8 returns the PKCS#8 PrivateKeyInfo inside an
// EncryptedPrivateKeyInfo. A wrong passphrase is ErrIncorrectPassphrase
// (detected by the CBC padding, so most of the time; the caller's parse of
// the result catches the rest). Errors never include key bytes.
func decryptPKCS8(der, passphrase []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) > 0 {
		return nil, errors.New("httpsig: malformed encrypted PKCS#8 key")
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("httpsig: encrypted PKCS#8 key uses %v, not PBES2; re-encrypt it with: openssl pkcs8 -topk8 -v2 aes-256-cbc", info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if rest, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil || len(rest) > 0 {
		return nil, errors.New("httpsig: malformed PBES2 parameters")
	}
	keyLen, ok := oidAESCBCKeySize[params.EncryptionScheme.Algorithm.String()]
	if !ok {
		return nil, fmt.Errorf("httpsig: encrypted PKCS#8 key uses cipher %v; supported: AES-128/192/256-CBC", params.EncryptionScheme.Algorithm)
	}
	var iv []byte
	if rest, err := asn1.Unmarshal(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil || len(rest) > 0 || len(iv) != aes.BlockSize {
		return nil, errors.New("httpsig: malformed AES-CBC parameters")
	}
	key, err := deriveKey(params.KeyDerivationFunc, passphrase, keyLen)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	if len(info.EncryptedData) == 0 || len(info.EncryptedData)%aes.BlockSize != 0 {
		return nil, errors.New("httpsig: malformed encrypted PKCS#8 key")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, len(info.EncryptedData))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, info.EncryptedData)
	return unpad(plain)
}

func deriveKey(kdf algorithmIdentifier, passphrase []byte, keyLen int) ([]byte, error) {
	switch {
	case kdf.Algorithm.Equal(oidPBKDF2):
		var p pbkdf2Params
		if rest, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil || len(rest) > 0 {
			return nil, errors.New("httpsig: malformed PBKDF2 parameters")
		}
		if p.IterationCount < 1 || p.IterationCount > maxPBKDF2Iterations || len(p.Salt) == 0 {
			return nil, errors.New("httpsig: PBKDF2 parameters out of range")
		}
		if p.KeyLength != 0 && p.KeyLength != keyLen {
			return nil, errors.New("httpsig: PBKDF2 key length does not match the cipher")
		}
		prf := sha1.New
		if len(p.PRF.Algorithm) > 0 && !p.PRF.Algorithm.Equal(oidHMACWithSHA1) {
			h, ok := oidHMACWithSHA[p.PRF.Algorithm.String()]
			if !ok {
				return nil, fmt.Errorf("httpsig: PBKDF2 PRF %v is not supported", p.PRF.Algorithm)
			}
			prf = h
		}
		return pbkdf2.Key(prf, string(passphrase), p.Salt, p.IterationCount, keyLen)
	case kdf.Algorithm.Equal(oidScrypt):
		var p scryptParams
		if rest, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil || len(rest) > 0 {
			return nil, errors.New("httpsig: malformed scrypt parameters")
		}
		if p.CostParameter < 2 || p.CostParameter > maxScryptN || p.BlockSize < 1 || p.BlockSize > maxScryptRP ||
			p.ParallelizationParameter < 1 || p.ParallelizationParameter > maxScryptRP || len(p.Salt) == 0 {
			return nil, errors.New("httpsig: scrypt parameters out of range")
		}
		if p.KeyLength != 0 && p.KeyLength != keyLen {
			return nil, errors.New("httpsig: scrypt key length does not match the cipher")
		}
		key, err := scrypt.Key(passphrase, p.Salt, p.CostParameter, p.BlockSize, p.ParallelizationParameter, keyLen)
		if err != nil {
			return nil, errors.New("httpsig: scrypt parameters out of range")
		}
		return key, nil
	}
	return nil, fmt.Errorf("httpsig: key derivation %v is not supported; supported: PBKDF2, scrypt", kdf.Algorithm)
}

// unpad removes PKCS#7 padding in constant time over its length, so a wrong
// passphrase is told apart from a right one by nothing but the outcome.
func unpad(b []byte) ([]byte, error) {
	n := int(b[len(b)-1])
	ok := subtle.ConstantTimeLessOrEq(1, n) & subtle.ConstantTimeLessOrEq(n, aes.BlockSize)
	if ok == 0 {
		clear(b)
		return nil, ErrIncorrectPassphrase
	}
	good := 1
	for i := len(b) - n; i < len(b); i++ {
		good &= subtle.ConstantTimeByteEq(b[i], byte(n))
	}
	if good == 0 {
		clear(b)
		return nil, ErrIncorrectPassphrase
	}
	return b[:len(b)-n], nil
}

package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// parseKeyPair loads a certificate chain and its private key. Errors name
// what is wrong, never the bytes: the key file is secret.
func parseKeyPair(contents [][]byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(contents[0], contents[1])
	if err != nil {
		// crypto/tls's messages are fixed text (PEM block types at most).
		return nil, fmt.Errorf("certificate and key do not load as a pair: %w", err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, errors.New("the certificate does not parse")
		}
	}
	return &cert, nil
}

// parseCABundle loads a PEM bundle of CA certificates. Anything but
// certificates (a key pasted in by mistake) is an error, as is an empty
// bundle: either would silently change who may connect.
func parseCABundle(contents [][]byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	rest := contents[0]
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("client CA bundle: PEM block %d is %q, not a CERTIFICATE", n, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("client CA bundle: certificate %d does not parse: %w", n, err)
		}
		pool.AddCert(cert)
	}
	if n == 0 {
		return nil, errors.New("client CA bundle holds no PEM certificate")
	}
	return pool, nil
}

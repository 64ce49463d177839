package peers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// CA is the sandbox's own certificate authority. It signs the certificates
// of the peers that serve TLS on this machine (moto's AWS endpoint, the
// alert inbox, the mail server), and only the clients handed its pool trust
// it: it never goes into the system's trust store.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	pool    *x509.CertPool

	mu     sync.Mutex
	issued map[string]*tls.Certificate // by host name, for GetCertificate
}

// NewCA generates a CA valid for 30 days (the sandbox makes a new one
// every time it starts).
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("peers: CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Portal sandbox CA", Organization: []string{"Portal sandbox"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("peers: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("peers: CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{cert: cert, key: key, pool: pool, issued: map[string]*tls.Certificate{},
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// CertPEM returns the CA's certificate, PEM-encoded: what AWS_CA_BUNDLE,
// REQUESTS_CA_BUNDLE and the like are given.
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// Pool returns a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool { return ca.pool }

// WriteCert writes the CA's certificate to path (mode 0644).
func (ca *CA) WriteCert(path string) error {
	if err := os.WriteFile(path, ca.certPEM, 0o644); err != nil {
		return fmt.Errorf("peers: write CA certificate: %w", err)
	}
	return nil
}

// Issue returns a server certificate for hosts (DNS names or IP
// addresses), signed by the CA and valid as long as it, with its
// PEM-encoded certificate chain and private key.
func (ca *CA) Issue(hosts ...string) (cert tls.Certificate, certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return cert, nil, nil, fmt.Errorf("peers: issue a certificate: no host names")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return cert, nil, nil, fmt.Errorf("peers: certificate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"Portal sandbox"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     ca.cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return cert, nil, nil, fmt.Errorf("peers: certificate for %s: %w", strings.Join(hosts, ", "), err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return cert, nil, nil, fmt.Errorf("peers: certificate key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	return cert, certPEM, keyPEM, err
}

// ServerTLS returns a TLS configuration that presents, for whatever host
// name a client asks for (SNI), a certificate for that name issued by the
// CA on first use: the alert inbox answers for any subscriber address.
func (ca *CA) ServerTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		host := hello.ServerName
		if host == "" {
			host = "127.0.0.1"
		}
		ca.mu.Lock()
		defer ca.mu.Unlock()
		if c, ok := ca.issued[host]; ok {
			return c, nil
		}
		c, _, _, err := ca.Issue(host)
		if err != nil {
			return nil, err
		}
		ca.issued[host] = &c
		return &c, nil
	}}
}

// ClientTLS returns a TLS configuration that trusts only the CA.
func (ca *CA) ClientTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: ca.pool}
}

// HTTPClient returns an HTTP client that trusts only the CA, for talking
// to the peers it signed.
func (ca *CA) HTTPClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = ca.ClientTLS()
	tr.Proxy = nil
	return &http.Client{Timeout: timeout, Transport: tr}
}

package signal

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// tokenContext separates signaling tokens from other uses of a secret.
const tokenContext = "rtckit-signal-token:"

// SignToken returns an access token valid until expires, signed with
// secret: "<expiry unix seconds>.<base64url HMAC-SHA256>".
func SignToken(secret string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return exp + "." + tokenMAC(secret, exp)
}

// VerifyToken reports whether token was made by SignToken with secret and
// has not expired at now.
func VerifyToken(secret, token string, now time.Time) bool {
	exp, mac, ok := strings.Cut(token, ".")
	if !ok || secret == "" {
		return false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || now.Unix() >= unix {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(tokenMAC(secret, exp)))
}

func tokenMAC(secret, exp string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(tokenContext + exp))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// equalToken compares a presented token with the static one in constant
// time.
func equalToken(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

package peer

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // TURN REST credentials are defined with HMAC-SHA1.
	"encoding/base64"
	"strconv"
	"time"
)

// DefaultTURNTTL is the lifetime of minted TURN REST credentials.
const DefaultTURNTTL = 12 * time.Hour

// TURNRESTCredentials mints ephemeral TURN credentials from a shared secret,
// as coturn's use-auth-secret (the "TURN REST API") expects: the username is
// "expiry-unix-time:user" and the password base64(HMAC-SHA1(secret, username)).
// An empty user gives a username of the expiry time alone.
func TURNRESTCredentials(secret, user string, ttl time.Duration, now time.Time) (username, password string) {
	if ttl <= 0 {
		ttl = DefaultTURNTTL
	}
	username = strconv.FormatInt(now.Add(ttl).Unix(), 10)
	if user != "" {
		username += ":" + user
	}
	return username, TURNRESTPassword(secret, username)
}

// TURNRESTPassword returns the password that goes with a TURN REST username.
func TURNRESTPassword(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

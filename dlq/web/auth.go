package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Auth says who may use the review page. At least one method must be configured.
// Secrets are taken as given: the caller resolves them from the environment or a file.
type Auth struct {
	// Token is the bearer token (Authorization: Bearer <token>); "" disables token auth.
	// A caller using it is identified as TokenIdentity.
	Token string
	// Users maps a basic-auth user name to its password; the user name is the
	// reviewer's identity in the audit trail.
	Users map[string]string
}

// TokenIdentity is the reviewer identity of a caller authenticated by the bearer token.
const TokenIdentity = "token"

// realm is what a browser shows in its sign-in prompt.
const realm = "concord review"

// authenticator checks credentials in constant time. Secrets are kept only as
// SHA-256 digests, so comparisons do not leak their length either.
type authenticator struct {
	token  *[sha256.Size]byte
	users  map[string][sha256.Size]byte
	csrf   []byte            // random per process: CSRF tokens are HMACs of the identity
	absent [sha256.Size]byte // compared against for unknown users, so they take as long
}

func newAuthenticator(a Auth) (*authenticator, error) {
	if a.Token == "" && len(a.Users) == 0 {
		return nil, errors.New("web: no authentication configured: set a bearer token or at least one basic-auth user; the review queue is never served unauthenticated")
	}
	au := &authenticator{users: make(map[string][sha256.Size]byte, len(a.Users)), csrf: make([]byte, 32)}
	if a.Token != "" {
		sum := sha256.Sum256([]byte(a.Token))
		au.token = &sum
	}
	for user, password := range a.Users {
		switch {
		case user == "" || strings.Contains(user, ":"):
			return nil, fmt.Errorf("web: basic-auth user name %q: must be non-empty and contain no ':'", user)
		case user == TokenIdentity:
			return nil, fmt.Errorf("web: basic-auth user name %q is reserved for the bearer token's identity; choose another", user)
		case password == "":
			return nil, fmt.Errorf("web: basic-auth user %q has an empty password", user)
		}
		au.users[user] = sha256.Sum256([]byte(password))
	}
	if _, err := rand.Read(au.csrf); err != nil {
		return nil, fmt.Errorf("web: CSRF key: %w", err)
	}
	if _, err := rand.Read(au.absent[:]); err != nil {
		return nil, fmt.Errorf("web: CSRF key: %w", err)
	}
	return au, nil
}

// identify returns the caller's identity: TokenIdentity for the bearer token, the user
// name for basic auth. ok is false when the request carries no valid credentials.
func (a *authenticator) identify(r *http.Request) (id string, ok bool) {
	authz := r.Header.Get("Authorization")
	if scheme, token, found := strings.Cut(authz, " "); found && strings.EqualFold(scheme, "Bearer") {
		if a.token == nil {
			return "", false
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		return TokenIdentity, subtle.ConstantTimeCompare(sum[:], a.token[:]) == 1
	}
	user, password, found := r.BasicAuth()
	if !found || len(a.users) == 0 {
		return "", false
	}
	want, known := a.users[user]
	if !known {
		want = a.absent
	}
	sum := sha256.Sum256([]byte(password))
	return user, subtle.ConstantTimeCompare(sum[:], want[:]) == 1 && known
}

// challenge asks for credentials: a browser prompts for a user name and password when
// basic auth is configured.
func (a *authenticator) challenge(w http.ResponseWriter) {
	if len(a.users) > 0 {
		w.Header().Add("WWW-Authenticate", `Basic realm="`+realm+`", charset="UTF-8"`)
	}
	if a.token != nil {
		w.Header().Add("WWW-Authenticate", `Bearer realm="`+realm+`"`)
	}
}

// csrfToken is the token every form carries: an HMAC of the identity under a key that
// is random per process. Another site cannot read it, so it cannot forge a POST that a
// browser would send with the reviewer's cached basic-auth credentials. Restarting the
// server invalidates open forms (they get a 403 asking to reload).
func (a *authenticator) csrfToken(identity string) string {
	mac := hmac.New(sha256.New, a.csrf)
	mac.Write([]byte("concord review csrf\x00" + identity))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (a *authenticator) validCSRF(identity, token string) bool {
	return token != "" && hmac.Equal([]byte(token), []byte(a.csrfToken(identity)))
}

// checkCSRF enforces the CSRF token on a POST (form field "csrf", or the X-CSRF-Token
// header for scripts); it writes the 403 itself.
func (h *Handler) checkCSRF(w http.ResponseWriter, r *http.Request, identity string) bool {
	if r.ContentLength > maxForm {
		h.tooLarge(w, r)
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.tooLarge(w, r)
			return false
		}
		h.fail(w, r, http.StatusBadRequest, "Unreadable form", "The form could not be read: "+err.Error())
		return false
	}
	token := r.PostForm.Get("csrf")
	if token == "" {
		token = r.Header.Get("X-CSRF-Token")
	}
	if !h.auth.validCSRF(identity, token) {
		h.fail(w, r, http.StatusForbidden, "Form expired or forged",
			"The form's security token is missing or not valid (the server may have restarted). Reload the page and submit it again.")
		return false
	}
	return true
}

// maxForm bounds a POST body: a decision on a few fields, not an upload.
const maxForm = 1 << 20

// tooLarge answers a POST whose body is over maxForm; the connection is closed
// rather than the rest of the body read.
func (h *Handler) tooLarge(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	h.fail(w, r, http.StatusRequestEntityTooLarge, "Request too large",
		fmt.Sprintf("A form sent to the review page is at most %d bytes; this one is larger. Decide fewer entries at once.", maxForm))
}

type identityKey struct{}

func withIdentity(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

func identity(ctx context.Context) string {
	id, _ := ctx.Value(identityKey{}).(string)
	return id
}

package apiserver

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry"
)

// TestUnauthenticated401 calls every operation that needs credentials
// without any, with a malformed header and with unknown tokens.
func TestUnauthenticated401(t *testing.T) {
	e := newEnv(t)
	for _, op := range operations(e) {
		if slices.Contains(rbacSpec[op.id], public) {
			continue
		}
		for _, auth := range []string{"", "fst_unknownsession", "fat_unknowntoken", "garbage"} {
			var body any
			if op.method != http.MethodGet && op.method != http.MethodDelete {
				body = "{}"
			}
			r := e.do(op.method, concrete(op.path), auth, body)
			if r.Code != http.StatusUnauthorized {
				t.Errorf("%s %s with %q: %d, want 401: %s", op.method, op.path, auth, r.Code, r.Body.String())
				continue
			}
			if p := problemOf(t, r); p.Code != ferry.EUNAUTHORIZED {
				t.Errorf("%s: problem code %q", op.id, p.Code)
			}
		}
	}
	r := e.api.Do("GET", "/api/v1/jobs", "Authorization: Basic YWRtaW46YWRtaW4=")
	if r.Code != http.StatusUnauthorized || r.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("Basic auth: %d, WWW-Authenticate %q", r.Code, r.Header().Get("WWW-Authenticate"))
	}
}

func TestLoginLockout(t *testing.T) {
	e := newEnv(t)
	pw := e.password["operator"]
	for i := range 5 {
		r := e.expect(e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "operator", "password": "wrong-password-" + itoa(int64(i))}), http.StatusUnauthorized)
		if p := problemOf(t, r); p.Code != ferry.EUNAUTHORIZED {
			t.Fatalf("attempt %d: code %q", i, p.Code)
		}
	}
	// Now even the right password is refused while the lock lasts.
	r := e.expect(e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "operator", "password": pw}), http.StatusUnauthorized)
	if p := problemOf(t, r); p.Code != CodeLocked || !strings.Contains(p.Detail, "locked until") {
		t.Fatalf("locked login: %+v", p)
	}
	// Other accounts are unaffected.
	e.login("admin", e.password["admin"], http.StatusOK)
	// The sysadmin unlocks the account; the right password works again.
	u, err := e.db.FindUserByName(context.Background(), "operator")
	if err != nil {
		t.Fatal(err)
	}
	e.expect(e.do("POST", "/api/v1/users/"+itoa(u.ID)+"/unlock", e.token["sysadmin"], nil), http.StatusNoContent)
	e.login("operator", pw, http.StatusOK)

	// Every attempt was audited, failures as failures.
	recs, _, err := e.db.ListAudit(context.Background(), ferry.AuditFilter{Action: "login", Actor: "operator", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var fail, ok int
	for _, r := range recs {
		switch r.Result {
		case ferry.AuditFailure:
			fail++
		case ferry.AuditSuccess:
			ok++
		}
	}
	// newEnv's first login, then 5 wrong + 1 locked, then one success.
	if fail != 6 || ok != 2 {
		t.Errorf("login audit: %d failures, %d successes; want 6 and 2", fail, ok)
	}
	// Unknown users are audited too, under the name tried.
	e.login("nobody", "whatever-Password-1", http.StatusUnauthorized)
	recs, _, _ = e.db.ListAudit(context.Background(), ferry.AuditFilter{Action: "login", Actor: "nobody"})
	if len(recs) != 1 || recs[0].Result != ferry.AuditFailure || recs[0].SourceAddr != "127.0.0.1" {
		t.Errorf("unknown-user login audit: %+v", recs)
	}
}

func TestMustChangePassword(t *testing.T) {
	e := newEnv(t)
	sa := e.token["sysadmin"]
	r := e.expect(e.do("POST", "/api/v1/users", sa, map[string]any{"username": "dave", "password": "Initial-Passw0rd", "roles": []string{"operator"}}), http.StatusCreated)
	var u UserView
	decode(t, r, &u)
	if !u.MustChangePassword || !slices.Equal(u.Roles, []string{"operator"}) {
		t.Fatalf("created user %+v", u)
	}
	tok := e.login("dave", "Initial-Passw0rd", http.StatusOK)
	for _, c := range []struct{ method, path string }{{"GET", "/api/v1/jobs"}, {"GET", "/api/v1/hosts"}, {"GET", "/api/v1/auth/tokens"}} {
		r := e.expect(e.do(c.method, c.path, tok, nil), http.StatusForbidden)
		if p := problemOf(t, r); p.Code != CodePasswordChangeRequired {
			t.Errorf("%s before password change: %+v", c.path, p)
		}
	}
	e.expect(e.do("GET", "/api/v1/auth/me", tok, nil), http.StatusOK)
	// The policy refuses weak passwords with a field-level problem.
	for _, weak := range []string{"short1A!", "alllowercaseletters", "dave-Passw0rd-x", "Initial-Passw0rd"} {
		r := e.expect(e.do("POST", "/api/v1/auth/password", tok, map[string]string{"currentPassword": "Initial-Passw0rd", "newPassword": weak}), http.StatusUnprocessableEntity)
		p := problemOf(t, r)
		if len(p.Errors) != 1 || p.Errors[0].Location != "body.newPassword" {
			t.Errorf("weak %q: %+v", weak, p)
		}
	}
	e.expect(e.do("POST", "/api/v1/auth/password", tok, map[string]string{"currentPassword": "wrong", "newPassword": "Better-Passw0rd-2"}), http.StatusUnprocessableEntity)
	e.expect(e.do("POST", "/api/v1/auth/password", tok, map[string]string{"currentPassword": "Initial-Passw0rd", "newPassword": "Better-Passw0rd-2"}), http.StatusNoContent)
	e.expect(e.do("GET", "/api/v1/jobs", tok, nil), http.StatusOK)
	e.login("dave", "Initial-Passw0rd", http.StatusUnauthorized)
	e.login("dave", "Better-Passw0rd-2", http.StatusOK)
	// A reset by the sysadmin sets the flag again and ends the sessions.
	e.expect(e.do("POST", "/api/v1/users/"+itoa(u.ID)+"/password", sa, map[string]string{"password": "Reset-Passw0rd-3"}), http.StatusNoContent)
	e.expect(e.do("GET", "/api/v1/auth/me", tok, nil), http.StatusUnauthorized)
	tok = e.login("dave", "Reset-Passw0rd-3", http.StatusOK)
	e.expect(e.do("GET", "/api/v1/jobs", tok, nil), http.StatusForbidden)
}

func TestSessionCookieAndLogout(t *testing.T) {
	e := newEnv(t)
	r := e.expect(e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "admin", "password": e.password["admin"]}), http.StatusOK)
	cookies := r.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v", cookies)
	}
	c := cookies[0]
	if c.Name != SessionCookie || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Expires.IsZero() {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/, an expiry", c)
	}
	var body SessionBody
	decode(t, r, &body)
	if body.Token != c.Value || !strings.HasPrefix(body.Token, sessionPrefix) {
		t.Fatalf("token %q vs cookie %q", body.Token, c.Value)
	}
	e.expect(e.api.Do("GET", "/api/v1/jobs", "Cookie: "+SessionCookie+"="+c.Value), http.StatusOK)
	r = e.expect(e.api.Do("POST", "/api/v1/auth/logout", "Cookie: "+SessionCookie+"="+c.Value), http.StatusNoContent)
	if out := r.Result().Cookies(); len(out) != 1 || out[0].MaxAge >= 0 {
		t.Errorf("logout cookie %v: want it cleared", out)
	}
	e.expect(e.api.Do("GET", "/api/v1/jobs", "Cookie: "+SessionCookie+"="+c.Value), http.StatusUnauthorized)
	e.expect(e.do("GET", "/api/v1/jobs", body.Token, nil), http.StatusUnauthorized)
	if c.Secure {
		t.Error("cookie over plain HTTP marked Secure without SecureCookie")
	}
	// Over HTTPS the cookie is Secure.
	ts := e.tlsServer()
	client := ts.Client()
	resp, err := client.Post(ts.URL+"/api/v1/auth/login", "application/json",
		strings.NewReader(`{"username":"admin","password":"`+e.password["admin"]+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Cookies(); resp.StatusCode != http.StatusOK || len(cs) != 1 || !cs[0].Secure {
		t.Errorf("HTTPS login: %d, cookies %v", resp.StatusCode, cs)
	}
}

func TestAPITokenLifecycle(t *testing.T) {
	e := newEnv(t)
	r := e.expect(e.do("POST", "/api/v1/auth/tokens", e.token["operator"], map[string]any{"name": "ci"}), http.StatusCreated)
	var created CreateTokenOutput
	decode(t, r, &created.Body)
	tok := created.Body.Token
	if !strings.HasPrefix(tok, apiTokenPrefix) || !strings.HasPrefix(tok, created.Body.APIKey.Prefix) {
		t.Fatalf("token %q prefix %q", tok, created.Body.APIKey.Prefix)
	}
	e.expect(e.do("GET", "/api/v1/jobs", tok, nil), http.StatusOK)
	r = e.expect(e.do("GET", "/api/v1/auth/me", tok, nil), http.StatusOK)
	if !strings.Contains(r.Body.String(), `"via":"token"`) {
		t.Errorf("me via token: %s", r.Body.String())
	}
	// The secret is never listed, nor stored in clear.
	r = e.expect(e.do("GET", "/api/v1/auth/tokens", e.token["operator"], nil), http.StatusOK)
	if strings.Contains(r.Body.String(), tok) {
		t.Fatal("token list shows the secret")
	}
	var stored int
	if err := e.db.Bun().NewRaw("SELECT count(*) FROM api_tokens WHERE token_hash = ?", tok).Scan(context.Background(), &stored); err != nil || stored != 0 {
		t.Fatalf("secret stored in clear (%d rows, %v)", stored, err)
	}
	// Another user cannot revoke it.
	e.expect(e.do("DELETE", "/api/v1/auth/tokens/"+itoa(created.Body.APIKey.ID), e.token["admin"], nil), http.StatusNotFound)
	e.expect(e.do("DELETE", "/api/v1/auth/tokens/"+itoa(created.Body.APIKey.ID), e.token["operator"], nil), http.StatusNoContent)
	r = e.expect(e.do("GET", "/api/v1/jobs", tok, nil), http.StatusUnauthorized)
	problemOf(t, r)
}

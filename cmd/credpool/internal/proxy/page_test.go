// page_test.go drives the status page in real headless Chromium, over the
// Chrome DevTools Protocol: the table renders each state in its colour, the
// page asks for the token, a dead key's reset button revives it, and a key's
// disable and enable buttons take it out of rotation and back.

package proxy

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/fakeapi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// pageRow is a table row as the browser renders it.
type pageRow struct {
	Class   string `json:"class"`
	Index   string `json:"index"`
	Label   string `json:"label"`
	State   string `json:"state"`
	Color   string `json:"color"`
	Reset   bool   `json:"reset"`   // the reset button is enabled
	Disable bool   `json:"disable"` // the row has an enabled disable button
	Enable  bool   `json:"enable"`  // the row has an enabled enable button
}

const readRows = `[...document.querySelectorAll("#keys tbody tr")].map((tr) => {
	const badge = tr.querySelector(".state");
	return {
		class: tr.className,
		index: tr.dataset.index,
		label: tr.cells[1].textContent,
		state: badge.textContent,
		color: getComputedStyle(badge).backgroundColor,
		reset: !tr.querySelector("button.reset").disabled,
		disable: tr.querySelector("button.disable:enabled") !== null,
		enable: tr.querySelector("button.enable:enabled") !== null,
	};
})`

// browser starts headless Chromium with a new, empty profile and returns a
// tab's context. Without Chromium the test is skipped, except in CI.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Chromium is not installed at %s, and CI=true: install it with apt-get install -y chromium", chromiumPath)
		}
		t.Skipf("Chromium is not installed at %s (apt-get install -y chromium); skipped outside CI", chromiumPath)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { // before TempDir's cleanup: the browser has exited
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	return ctx
}

func TestStatusPageInChromium(t *testing.T) {
	ctx := browser(t)
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{goodKey, limitedKey, revokedKey}, testToken)
	require.Eventually(t, func() bool {
		code, _ := p.do(t, http.MethodGet, "/v1/models", bearer(testToken))
		require.Equal(t, http.StatusOK, code)
		st := p.status(t, testToken)
		return st[0].State == credpool.StateOK && st[1].State == credpool.StateExhausted && st[2].State == credpool.StateDead
	}, 5*time.Second, time.Millisecond, "one key ok, one exhausted, one dead")

	// The status needs the token, so the page asks for it.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(p.URL+"/credpool/"),
		chromedp.WaitVisible(chromedp.ID("auth")),
		chromedp.SendKeys(chromedp.ID("token"), testToken),
		chromedp.Click(chromedp.ID("auth-save")),
		chromedp.WaitVisible(chromedp.CSS("#keys tbody tr.state-dead")),
	))
	stored, err := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem("credpool-token")`))
	require.NoError(t, err)
	assert.Equal(t, testToken, stored, "the token is kept for the session")

	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]pageRow](readRows))
	require.NoError(t, err)
	require.Len(t, rows, 3)
	want := []pageRow{
		{Class: "state-ok", Index: "0", Label: "sk-…GOOD", State: "ok", Color: "rgb(26, 127, 55)", Reset: false, Disable: true},
		{Class: "state-exhausted", Index: "1", Label: "sk-…LIMT", State: "exhausted", Color: "rgb(180, 83, 9)", Reset: true, Disable: true},
		{Class: "state-dead", Index: "2", Label: "sk-…REVK", State: "dead", Color: "rgb(198, 40, 40)", Reset: true, Disable: true},
	}
	assert.Equal(t, want, rows, "green ok, amber exhausted, red dead")
	summary, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("summary")))
	require.NoError(t, err)
	assert.Equal(t, "3 keys: 1 ok, 1 exhausted, 1 dead", summary)
	backIn, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#keys tbody tr.state-exhausted td:nth-child(5)")))
	require.NoError(t, err)
	assert.Regexp(t, `^(9|10)m \d+s$`, backIn, "the exhausted key's countdown")

	// Reset the dead key from its button.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#keys tbody tr.state-dead button.reset")),
		chromedp.WaitNotPresent(chromedp.CSS("#keys tbody tr.state-dead")),
	))
	assert.Equal(t, credpool.StateOK, p.status(t, testToken)[2].State, "the key is back in rotation")
	rows, err = chromedp.Run(ctx, chromedp.Evaluate[[]pageRow](readRows))
	require.NoError(t, err)
	assert.Equal(t, "state-ok", rows[2].Class)
	assert.Equal(t, credpool.StateExhausted, p.status(t, testToken)[1].State, "the other keys are untouched")
}

// TestStatusPageDisableAndEnableInChromium: a key's disable button takes it
// out of rotation, shown grey and struck through with only an enable button
// (a reset would leave it disabled), and enable puts it back. Without the
// token, the buttons change nothing and the page asks for it.
func TestStatusPageDisableAndEnableInChromium(t *testing.T) {
	ctx := browser(t)
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{goodKey, good2Key, revokedKey}, testToken)
	require.Eventually(t, func() bool {
		code, _ := p.do(t, http.MethodGet, "/v1/models", bearer(testToken))
		require.Equal(t, http.StatusOK, code)
		return p.status(t, testToken)[2].State == credpool.StateDead
	}, 5*time.Second, time.Millisecond, "the revoked key is dead")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(p.URL+"/credpool/"),
		chromedp.WaitVisible(chromedp.ID("auth")),
		chromedp.SendKeys(chromedp.ID("token"), testToken),
		chromedp.Click(chromedp.ID("auth-save")),
		chromedp.WaitVisible(chromedp.CSS("#keys tbody tr.state-dead")),
		chromedp.Click(chromedp.CSS(`#keys tbody tr[data-index="0"] button.disable`)),
		chromedp.WaitVisible(chromedp.CSS(`#keys tbody tr.state-disabled[data-index="0"]`)),
	))
	assert.Equal(t, credpool.StateDisabled, p.status(t, testToken)[0].State, "the key is out of rotation")
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]pageRow](readRows))
	require.NoError(t, err)
	require.Len(t, rows, 3)
	assert.Equal(t, pageRow{Class: "state-disabled", Index: "0", Label: "sk-…GOOD", State: "disabled",
		Color: "rgb(87, 96, 106)", Reset: false, Disable: false, Enable: true}, rows[0],
		"grey, with enable only: a reset would leave it disabled")
	assert.Equal(t, pageRow{Class: "state-dead", Index: "2", Label: "sk-…REVK", State: "dead",
		Color: "rgb(198, 40, 40)", Reset: true, Disable: true}, rows[2])
	struck, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`getComputedStyle(document.querySelector("#keys tbody tr.state-disabled td.label")).textDecorationLine`))
	require.NoError(t, err)
	assert.Equal(t, "line-through", struck)
	summary, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("summary")))
	require.NoError(t, err)
	assert.Equal(t, "3 keys: 1 ok, 0 exhausted, 1 dead, 1 disabled", summary)
	page, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	require.NoError(t, err)
	for _, k := range []string{goodKey, good2Key, revokedKey} {
		assert.NotContains(t, page, k, "labels only, never a key")
	}

	// With a wrong token, enable changes nothing, and the page asks again.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem("credpool-token", "wrong-token-0123456789abcdef");
			document.querySelector('#keys tbody tr[data-index="0"] button.enable').click()`),
		chromedp.WaitVisible(chromedp.ID("auth")),
	))
	assert.Equal(t, credpool.StateDisabled, p.status(t, testToken)[0].State, "a refused enable changes nothing")

	// With the token again, enable puts the key back in rotation.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token"), testToken),
		chromedp.Click(chromedp.ID("auth-save")),
		// The button the refused click disabled is replaced once the
		// status is read again with the token.
		chromedp.WaitVisible(chromedp.CSS(`#keys tbody tr[data-index="0"] button.enable:enabled`)),
		chromedp.Click(chromedp.CSS(`#keys tbody tr[data-index="0"] button.enable:enabled`)),
		chromedp.WaitVisible(chromedp.CSS(`#keys tbody tr.state-ok[data-index="0"]`)),
	))
	assert.Equal(t, credpool.StateOK, p.status(t, testToken)[0].State)
	rows, err = chromedp.Run(ctx, chromedp.Evaluate[[]pageRow](readRows))
	require.NoError(t, err)
	assert.Equal(t, pageRow{Class: "state-ok", Index: "0", Label: "sk-…GOOD", State: "ok",
		Color: "rgb(26, 127, 55)", Reset: false, Disable: true}, rows[0])
	summary, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("summary")))
	require.NoError(t, err)
	assert.Equal(t, "3 keys: 2 ok, 0 exhausted, 1 dead", summary, "no disabled count when none is")
}

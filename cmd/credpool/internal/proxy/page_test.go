// page_test.go drives the status page in real headless Chromium, over the
// Chrome DevTools Protocol: the table renders each state in its colour, the
// page asks for the token, and a dead key's reset button revives it.

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
	Class string `json:"class"`
	Index string `json:"index"`
	Label string `json:"label"`
	State string `json:"state"`
	Color string `json:"color"`
	Reset bool   `json:"reset"` // the reset button is enabled
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
		{Class: "state-ok", Index: "0", Label: "sk-…GOOD", State: "ok", Color: "rgb(26, 127, 55)", Reset: false},
		{Class: "state-exhausted", Index: "1", Label: "sk-…LIMT", State: "exhausted", Color: "rgb(180, 83, 9)", Reset: true},
		{Class: "state-dead", Index: "2", Label: "sk-…REVK", State: "dead", Color: "rgb(198, 40, 40)", Reset: true},
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

package credpool

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeysFromEnv(t *testing.T) {
	cases := []struct {
		name, value string
		want        []string
		err         string
	}{
		{name: "comma-separated", value: keyA + "," + keyB, want: []string{keyA, keyB}},
		{name: "lines, CRLF and blanks", value: keyA + "\r\n\n  " + keyB + "  \n", want: []string{keyA, keyB}},
		{name: "empty", value: " , \n", err: "credpool: environment variable CREDPOOL_TEST_KEYS holds no keys"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CREDPOOL_TEST_KEYS", tc.value)
			keys, err := KeysFromEnv("CREDPOOL_TEST_KEYS")
			if tc.err != "" {
				assert.EqualError(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, keys)
		})
	}
	_, err := KeysFromEnv("CREDPOOL_TEST_UNSET_VARIABLE")
	assert.EqualError(t, err, "credpool: environment variable CREDPOOL_TEST_UNSET_VARIABLE is not set")
}

func TestKeysFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(path, []byte("# production keys\n"+keyA+"\n\n"+keyB+", "+keyC+"\n"), 0o600))
	keys, err := KeysFromFile(path)
	require.NoError(t, err)
	assert.Equal(t, []string{keyA, keyB, keyC}, keys)

	_, err = KeysFromFile(filepath.Join(t.TempDir(), "missing"))
	assert.ErrorContains(t, err, "credpool: reading keys: open ")
	require.NoError(t, os.WriteFile(path, []byte("# nothing\n"), 0o600))
	_, err = KeysFromFile(path)
	assert.EqualError(t, err, "credpool: "+path+" holds no keys")
}

func TestResetKey(t *testing.T) {
	p := newProvider(t, func(string, int) reply { return reply{status: 401, body: bodyRevoked} })
	tr := newTransport(t, []string{keyA, keyB})
	get(t, tr, p.URL)
	require.NoError(t, tr.ResetKey(1))
	assert.Equal(t, StateDead, tr.Keys()[0].State)
	assert.Equal(t, StateOK, tr.Keys()[1].State)
	assert.EqualError(t, tr.ResetKey(2), "credpool: ResetKey: no key at index 2 (the pool has 2)")
	assert.Error(t, tr.ResetKey(-1))
}

// TestKeysFromFileAsEditorsWriteThem: a byte order mark, quotes around keys
// (as .env files write them) and CRLF line ends are read as a person meant
// them; a bad key is named by its line, never shown.
func TestKeysFromFileAsEditorsWriteThem(t *testing.T) {
	cases := []struct {
		name, content string
		want          []string
		err           string
	}{
		{name: "byte order mark", content: "\uFEFF" + keyA + "\r\n" + keyB + "\r\n", want: []string{keyA, keyB}},
		{name: "quotes", content: `"` + keyA + `"` + "\n'" + keyB + "', \"" + keyC + "\"\n", want: []string{keyA, keyB, keyC}},
		{name: "mismatched quotes stay and are refused", content: keyA + "\n\"" + keyB + "'\n",
			err: "line 2: the key has a quote at offset 0 (quotes around a key in a file are removed; a stray one is a typo)"},
		{name: "a bad key on line 3", content: "# keys\n" + keyA + "\nsk-with space\n",
			err: "line 3: the key has a space, control or non-ASCII byte at offset 7"},
		{name: "a repeated key", content: keyA + "\n" + keyB + "\n" + keyA + "\n", err: "line 3: the key repeats the key on line 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys")
			require.NoError(t, os.WriteFile(path, []byte(tc.content), 0o600))
			keys, err := KeysFromFile(path)
			if tc.err != "" {
				require.ErrorIs(t, err, ErrInvalidKey)
				assert.EqualError(t, err, "credpool: invalid key: "+path+" "+tc.err)
				assertNoSecret(t, "the error", err.Error(), keyA, keyB)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, keys)
		})
	}
}

package integration_test

// The SDK snippets of docs/sdks.md, one per SDK, compiled by go vet and go test. They
// have no Output comment, so they are never run: they would need real keys.

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/anthropics/anthropic-sdk-go/v2"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/credpool/credpool"
	"github.com/google/go-github/v93/github"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	goopenai "github.com/sashabaranov/go-openai"
	"google.golang.org/genai"
)

// openai-go: the pool sets "Authorization: Bearer"; the SDK's key is a
// placeholder, and its retries are off because credpool rotates and backs off.
func Example_openai() {
	pool, err := credpool.New([]string{os.Getenv("OPENAI_KEY_1"), os.Getenv("OPENAI_KEY_2")},
		credpool.WithHosts("api.openai.com"))
	if err != nil {
		log.Fatal(err)
	}
	client := openai.NewClient(
		option.WithHTTPClient(&http.Client{Transport: pool}),
		option.WithAPIKey("credpool"), // placeholder: credpool sets the real key
		option.WithMaxRetries(0),      // credpool already rotates keys and backs off
	)

	res, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    openai.ChatModelGPT5_4Mini,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Choices[0].Message.Content)
}

// anthropic-sdk-go: the Anthropic preset sends the raw key in x-api-key and
// drops the placeholder "Authorization: Bearer" the v2 SDK sets.
func Example_anthropic() {
	pool, err := credpool.New([]string{os.Getenv("ANTHROPIC_KEY_1"), os.Getenv("ANTHROPIC_KEY_2")},
		credpool.Anthropic(), credpool.WithHosts("api.anthropic.com"))
	if err != nil {
		log.Fatal(err)
	}
	client := anthropic.NewClient(
		anthropicoption.WithHTTPClient(&http.Client{Transport: pool}),
		anthropicoption.WithAPIKey("credpool"), // placeholder: credpool sets the real key
		anthropicoption.WithMaxRetries(0),      // credpool already rotates keys and backs off
	)

	msg, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model:     anthropic.ModelClaudeSonnet5_5,
		MaxTokens: 1024,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello"))},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg.Content[0].Text)
}

// go-openai: it has no retries of its own, so there is nothing to turn off.
func Example_goOpenAI() {
	pool, err := credpool.New([]string{os.Getenv("OPENAI_KEY_1"), os.Getenv("OPENAI_KEY_2")},
		credpool.WithHosts("api.openai.com"))
	if err != nil {
		log.Fatal(err)
	}
	cfg := goopenai.DefaultConfig("credpool") // placeholder: credpool sets the real key
	cfg.HTTPClient = &http.Client{Transport: pool}
	client := goopenai.NewClientWithConfig(cfg)

	res, err := client.CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{
		Model:    goopenai.GPT4oMini,
		Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "Say hello"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Choices[0].Message.Content)
}

// genai (Gemini API): the Gemini preset sends the key in x-goog-api-key.
// Leave HTTPOptions.RetryOptions nil: genai then makes one request per call.
func Example_genai() {
	ctx := context.Background()
	pool, err := credpool.New([]string{os.Getenv("GEMINI_KEY_1"), os.Getenv("GEMINI_KEY_2")},
		credpool.Gemini(), credpool.WithHosts("generativelanguage.googleapis.com"))
	if err != nil {
		log.Fatal(err)
	}
	client, err := genai.NewClient(ctx, &genai.ClientConfig{
		APIKey:     "credpool", // placeholder: credpool sets the real key
		Backend:    genai.BackendGeminiAPI,
		HTTPClient: &http.Client{Transport: pool},
	})
	if err != nil {
		log.Fatal(err)
	}

	res, err := client.Models.GenerateContent(ctx, "gemini-2.0-flash", genai.Text("Say hello"), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Text())
}

// go-github: no token option is needed. WithDisableRateLimitCheck stops
// go-github from blocking every call when one token's limit runs out.
func Example_goGitHub() {
	pool, err := credpool.New([]string{os.Getenv("GITHUB_TOKEN_1"), os.Getenv("GITHUB_TOKEN_2")},
		credpool.GitHub(), credpool.WithHosts("api.github.com"))
	if err != nil {
		log.Fatal(err)
	}
	client, err := github.NewClient(
		github.WithHTTPClient(&http.Client{Transport: pool}),
		github.WithDisableRateLimitCheck(), // credpool cools the spent token; the others go on
	)
	if err != nil {
		log.Fatal(err)
	}

	user, _, err := client.Users.Get(context.Background(), "octocat")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(user.GetName())
}

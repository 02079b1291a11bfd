package notify

// Placeholders for the pipeline stage settings; the pipeline defines them.
type (
	FilterConfig    struct{}
	DedupConfig     struct{}
	RateLimitConfig struct{}
)

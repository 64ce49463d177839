package web

import (
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"portal/internal/billing"
)

// maxWebhookBody bounds a Stripe event delivery.
const maxWebhookBody = 1 << 20

// stripeWebhook receives Stripe's event deliveries. It is public and, like
// every path under /webhooks/, has no session and no CSRF check; the
// signature on the raw body is what authenticates it. It answers as soon
// as the event is recorded; the object is re-fetched in the background.
func (s *Server) stripeWebhook(c echo.Context) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxWebhookBody+1))
	if err != nil {
		return c.JSON(http.StatusBadRequest, map[string]string{"error": "the body could not be read"})
	}
	if len(body) > maxWebhookBody {
		return c.JSON(http.StatusRequestEntityTooLarge, map[string]string{"error": "the body is larger than 1 MiB"})
	}
	reqID := c.Response().Header().Get(echo.HeaderXRequestID)
	r, err := s.deps.Billing.ReceiveWebhook(c.Request().Context(), body, c.Request().Header.Get("Stripe-Signature"))
	switch {
	case errors.Is(err, billing.ErrBadSignature):
		// The reason and who sent it; never the payload.
		s.deps.Logger.Warn("stripe webhook rejected", slog.String("reason", err.Error()), slog.String("ip", c.RealIP()),
			slog.String("request_id", reqID), slog.Int("bytes", len(body)))
		return c.JSON(http.StatusBadRequest, map[string]string{"error": "signature verification failed"})
	case errors.Is(err, billing.ErrWebhookNotConfigured):
		s.deps.Logger.Error("stripe webhook refused: STRIPE_WEBHOOK_SECRET is not set", slog.String("request_id", reqID))
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": "webhooks are not configured"})
	case err != nil:
		if st := statusOfErr(err); st < 500 {
			return c.JSON(st, map[string]string{"error": "not a Stripe event"})
		}
		return err
	}
	s.deps.Logger.Info("stripe webhook", slog.String("event", r.EventID), slog.String("type", r.Type),
		slog.Bool("duplicate", r.Duplicate), slog.Bool("ignored", r.Ignored), slog.String("request_id", reqID))
	return c.JSON(http.StatusOK, map[string]any{"received": true, "duplicate": r.Duplicate, "ignored": r.Ignored})
}

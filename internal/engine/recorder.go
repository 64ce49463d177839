package engine

import (
	"context"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

type middlewareStack = middleware.Stack

// recorder counts the AWS calls made through an Env and keeps their
// request ids, per resource when the context names one.
type recorder struct {
	mu     sync.Mutex
	calls  int
	byRes  map[string]int
	reqIDs map[string][]string
}

func newRecorder() *recorder {
	return &recorder{byRes: map[string]int{}, reqIDs: map[string][]string{}}
}

type resourceKey struct{}

// withResource tags ctx so calls made under it are counted for resource id.
func withResource(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, resourceKey{}, id)
}

// middleware counts each attempt of a call and keeps its request id. It is
// the outermost deserialize middleware: the SDK's request id retrievers
// sit just around the operation's deserializer, so only once they have
// returned does the metadata hold the request id.
func (r *recorder) middleware(stack *middleware.Stack) error {
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("portal/recorder",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleDeserialize(ctx, in)
			id, _ := ctx.Value(resourceKey{}).(string)
			reqID, _ := awsmiddleware.GetRequestIDMetadata(md)
			if reqID == "" {
				// S3 names its request id x-amz-request-id; the emulator
				// answers S3 with x-amzn-requestid, the other services'
				// header. Keep it (OnCall reads it from the metadata too),
				// so a run's S3 calls match their CloudTrail records there.
				if res, ok := out.RawResponse.(*smithyhttp.Response); ok && res != nil {
					if reqID = res.Header.Get("X-Amzn-Requestid"); reqID != "" {
						awsmiddleware.SetRequestIDMetadata(&md, reqID)
					}
				}
			}
			r.mu.Lock()
			r.calls++
			r.byRes[id]++
			if reqID != "" && len(r.reqIDs[id]) < 50 {
				r.reqIDs[id] = append(r.reqIDs[id], reqID)
			}
			r.mu.Unlock()
			return out, md, err
		}), middleware.Before)
}

// Calls returns the number of AWS calls recorded.
func (r *recorder) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func (r *recorder) forResource(id string) (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byRes[id], append([]string(nil), r.reqIDs[id]...)
}

// Call is one AWS call made by a plan or run, as Engine.OnCall sees it.
type Call struct {
	Stack     StackInfo
	Region    string
	Service   string // SDK service id, e.g. "S3", "EC2"
	Operation string // e.g. "CreateBucket"
	RequestID string
	Time      time.Time
	Input     any // the operation's input struct
	Err       error
}

// callHook reports each call made through a config to fn once it returns.
func callHook(info StackInfo, fn func(context.Context, Call), now func() time.Time) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("portal/on-call",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				at := now()
				out, md, err := next.HandleInitialize(ctx, in)
				reqID, _ := awsmiddleware.GetRequestIDMetadata(md)
				if reqID == "" {
					reqID = RequestID(err)
				}
				fn(ctx, Call{Stack: info, Region: awsmiddleware.GetRegion(ctx), Service: awsmiddleware.GetServiceID(ctx),
					Operation: awsmiddleware.GetOperationName(ctx), RequestID: reqID, Time: at, Input: in.Parameters, Err: err})
				return out, md, err
			}), middleware.After)
	}
}

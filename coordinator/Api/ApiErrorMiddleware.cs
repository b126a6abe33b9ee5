using System.Text.Json;
using Farm.Contracts;
using Farm.Coordinator.Auth;
using Farm.Coordinator.Builds;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Api;

/// <summary>
/// The one place exceptions become status codes: an unknown build (or another tenant's) 404, no token 401, a token
/// whose role does not allow the request (or a job credential refused) 403, a body that is not a valid submission 400, a cluster that cannot reach
/// the build right now 503 (with <c>Retry-After</c>), another Farm error 422, anything else 500. The body is
/// <c>{ "code": "FARMnnnn", "error": "..." }</c>.
/// </summary>
public sealed partial class ApiErrorMiddleware(RequestDelegate next, ILogger<ApiErrorMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch (Exception e) when (!context.Response.HasStarted && !(e is OperationCanceledException && context.RequestAborted.IsCancellationRequested))
        {
            var (status, code) = e switch
            {
                BuildNotFoundException f => (StatusCodes.Status404NotFound, f.Code),
                UnauthenticatedException f => (StatusCodes.Status401Unauthorized, f.Code),
                NotPermittedException f => (StatusCodes.Status403Forbidden, f.Code),
                AdminRequiredException f => (StatusCodes.Status403Forbidden, f.Code),
                JobCredentialRefusedException f => (StatusCodes.Status403Forbidden, f.Code),
                InvalidPruneRequestException f => (StatusCodes.Status400BadRequest, f.Code),
                BuildsRunningException f => (StatusCodes.Status409Conflict, f.Code),
                InvalidSubmissionException f => (StatusCodes.Status400BadRequest, f.Code),
                InvalidPushCredentialsException f => (StatusCodes.Status400BadRequest, f.Code),
                InvalidBuildSecretsException f => (StatusCodes.Status400BadRequest, f.Code),
                Farm.Oci.Images.InvalidCacheOptionException f => (StatusCodes.Status400BadRequest, f.Code),
                Farm.Oci.Images.UnsupportedCacheTypeException f => (StatusCodes.Status400BadRequest, f.Code),
                ClusterUnavailableException f => (StatusCodes.Status503ServiceUnavailable, f.Code),
                BadHttpRequestException bad => (bad.StatusCode, FarmErrorCodes.InvalidSubmission),
                JsonException => (StatusCodes.Status400BadRequest, FarmErrorCodes.InvalidSubmission),
                FarmException f => (StatusCodes.Status422UnprocessableEntity, f.Code),
                _ => (StatusCodes.Status500InternalServerError, FarmErrorCodes.BuildInternal),
            };
            if (status >= 500)
            {
                LogUnhandled(logger, e, context.Request.Method, context.Request.Path);
            }

            // A binding failure's own message says little; its inner JsonException names the field.
            var message = e is BadHttpRequestException { InnerException: { } inner } ? $"{e.Message} {inner.Message}" : e.Message;
            context.Response.Clear();
            if (status == StatusCodes.Status503ServiceUnavailable)
            {
                context.Response.Headers.RetryAfter = "5";
            }

            if (status == StatusCodes.Status401Unauthorized)
            {
                context.Response.Headers.WWWAuthenticate = "Bearer realm=\"farm\"";
            }

            await WriteAsync(context, status, code, message).ConfigureAwait(false);
        }
    }

    /// <summary>Answers <paramref name="status"/> with the API's error body for <paramref name="error"/> (the authentication handler's 401 and 403 too).</summary>
    internal static Task WriteAsync(HttpContext context, int status, FarmException error) => WriteAsync(context, status, error.Code, error.Message);

    private static Task WriteAsync(HttpContext context, int status, string code, string message)
    {
        context.Response.StatusCode = status;
        return context.Response.WriteAsJsonAsync(new { code, error = message }, BuildApi.Json, context.RequestAborted);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "{Method} {Path} failed")]
    private static partial void LogUnhandled(ILogger logger, Exception exception, string method, string path);
}

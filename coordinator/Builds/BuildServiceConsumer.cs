using Farm.Contracts;
using Farm.Coordinator.Auth;
using MassTransit;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Builds;

/// <summary>
/// Takes <see cref="SubmitBuild"/> from queue <see cref="QueueName"/>: records the build and returns, so the message is
/// acknowledged at once; the build runs in the background and ends with a <see cref="BuildCompleted"/>. A request
/// (a message with a response address) is answered with <see cref="BuildAccepted"/>. An invalid submission is
/// answered with a failed <see cref="BuildCompleted"/>, not retried.
/// </summary>
/// <remarks>
/// With auth on, the tenant is that of the AMQP user who published the message, read from the message's
/// <c>user_id</c> property, which RabbitMQ refuses to deliver unless it equals the publishing connection's user (a
/// user tagged <c>impersonator</c> may forge it: give tenants no such tag). A message without <c>user_id</c>, or from
/// a user the tokens file does not map to a tenant, never becomes a build (FARM4233); a tenant's <c>tenant</c> field
/// in the body is ignored. Without auth, builds have no tenant.
/// </remarks>
public sealed partial class SubmitBuildConsumer(BuildService builds, FarmTokens tokens, ILogger<SubmitBuildConsumer> logger) : IConsumer<SubmitBuild>
{
    public const string QueueName = "farm-submit-build";

    public async Task Consume(ConsumeContext<SubmitBuild> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        string? tenant = null;
        if (tokens.Enabled)
        {
            var user = context.ReceiveContext.TryGetPayload<RabbitMqBasicConsumeContext>(out var amqp) ? amqp.Properties.UserId : null;
            if (string.IsNullOrEmpty(user) || !tokens.TryTenantOfAmqpUser(user, out var mapped))
            {
                // No reply and no BuildCompleted: an unknown publisher learns nothing, and gets no build.
                var refused = new SubmissionNotAuthorizedException(string.IsNullOrEmpty(user) ? "the message has no user_id property" : $"the AMQP user '{user}' belongs to no tenant");
                LogNotAuthorized(logger, context.Message.BuildId, refused.Message);
                return;
            }

            tenant = mapped;
        }

        BuildRecord record;
        try
        {
            // A message carries no registry credentials, so none were passed with it, whatever its body says.
            record = builds.Submit(context.Message with { Tenant = tenant, PushCredentialRegistries = [], SecretIds = [], SshIds = [] });
        }
        catch (InvalidSubmissionException e)
        {
            var id = context.Message.BuildId == Guid.Empty ? Guid.NewGuid() : context.Message.BuildId;
            LogRefused(logger, id, e.Message);
            await context.Publish(new BuildCompleted { BuildId = id, Succeeded = false, ErrorCode = e.Code, Error = e.Message, Tenant = tenant }).ConfigureAwait(false);
            return;
        }

        if (context.ResponseAddress is not null)
        {
            await context.RespondAsync(new BuildAccepted { BuildId = record.BuildId }).ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Submission {BuildId} refused: {Reason}")]
    private static partial void LogRefused(ILogger logger, Guid buildId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Queued submission {BuildId} dropped: {Reason}")]
    private static partial void LogNotAuthorized(ILogger logger, Guid buildId, string reason);
}

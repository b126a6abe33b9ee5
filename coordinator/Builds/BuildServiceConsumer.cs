using Farm.Contracts;
using MassTransit;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Builds;

/// <summary>
/// Takes <see cref="SubmitBuild"/> from queue <see cref="QueueName"/>: records the build and returns, so the message is
/// acknowledged at once; the build runs in the background and ends with a <see cref="BuildCompleted"/>. A request
/// (a message with a response address) is answered with <see cref="BuildAccepted"/>. An invalid submission is
/// answered with a failed <see cref="BuildCompleted"/>, not retried.
/// </summary>
public sealed partial class SubmitBuildConsumer(BuildService builds, ILogger<SubmitBuildConsumer> logger) : IConsumer<SubmitBuild>
{
    public const string QueueName = "farm-submit-build";

    public async Task Consume(ConsumeContext<SubmitBuild> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        BuildRecord record;
        try
        {
            record = builds.Submit(context.Message);
        }
        catch (InvalidSubmissionException e)
        {
            var id = context.Message.BuildId == Guid.Empty ? Guid.NewGuid() : context.Message.BuildId;
            LogRefused(logger, id, e.Message);
            await context.Publish(new BuildCompleted { BuildId = id, Succeeded = false, ErrorCode = e.Code, Error = e.Message }).ConfigureAwait(false);
            return;
        }

        if (context.ResponseAddress is not null)
        {
            await context.RespondAsync(new BuildAccepted { BuildId = record.BuildId }).ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Submission {BuildId} refused: {Reason}")]
    private static partial void LogRefused(ILogger logger, Guid buildId, string reason);
}

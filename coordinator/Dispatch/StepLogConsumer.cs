using Farm.Contracts;
using MassTransit;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Dispatch;

/// <summary>
/// Takes every worker's log lines into this process's <see cref="BuildLogHub"/>. Its endpoint is temporary and per
/// instance (see CoordinatorHosting): each coordinator gets every line, since its own subscribers may want any build.
/// With auth on, only lines the farm's own users published (<see cref="JobResultSenders"/>).
/// </summary>
public sealed class StepLogConsumer(BuildLogHub hub, JobResultSenders senders, ILogger<StepLogConsumer> logger) : IConsumer<StepLogLine>
{
    public Task Consume(ConsumeContext<StepLogLine> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (senders.Admits(context, "A step output line", logger))
        {
            hub.Publish(context.Message);
        }

        return Task.CompletedTask;
    }
}

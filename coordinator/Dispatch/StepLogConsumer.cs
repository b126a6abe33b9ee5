using Farm.Contracts;
using MassTransit;

namespace Farm.Coordinator.Dispatch;

/// <summary>
/// Takes every worker's log lines into this process's <see cref="BuildLogHub"/>. Its endpoint is temporary and per
/// instance (see CoordinatorHosting): each coordinator gets every line, since its own subscribers may want any build.
/// </summary>
public sealed class StepLogConsumer(BuildLogHub hub) : IConsumer<StepLogLine>
{
    public Task Consume(ConsumeContext<StepLogLine> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        hub.Publish(context.Message);
        return Task.CompletedTask;
    }
}

using System.Collections.Concurrent;
using System.Collections.Immutable;
using Farm.Contracts;
using Microsoft.Extensions.Logging;

namespace Farm.Coordinator.Dispatch;

/// <summary>
/// Fans the step log lines of a build out to this process's subscribers (a CLI stream, a dashboard socket). In
/// process only, keyed by build id; the events component replaces it. A line nobody listens to is dropped.
/// </summary>
/// <remarks>
/// With single flight, a job runs under the first asking build's id (<see cref="Grains.LayerJobRequest.BuildId"/>):
/// other builds that joined it see its lines only when they subscribe to that id too.
/// </remarks>
public sealed partial class BuildLogHub(ILogger<BuildLogHub> logger)
{
    private readonly ConcurrentDictionary<Guid, ImmutableArray<Action<StepLogLine>>> _subscribers = new();

    /// <summary>Calls <paramref name="onLine"/> for each line of <paramref name="buildId"/> until the result is disposed.</summary>
    public IDisposable Subscribe(Guid buildId, Action<StepLogLine> onLine)
    {
        ArgumentNullException.ThrowIfNull(onLine);
        _subscribers.AddOrUpdate(buildId, _ => [onLine], (_, list) => list.Add(onLine));
        return new Subscription(this, buildId, onLine);
    }

    public void Publish(StepLogLine line)
    {
        ArgumentNullException.ThrowIfNull(line);
        if (!_subscribers.TryGetValue(line.BuildId, out var subscribers))
        {
            return;
        }

        foreach (var subscriber in subscribers)
        {
            try
            {
                subscriber(line);
            }
            catch (Exception e)
            {
                // One broken subscriber must not cost the others their lines.
                LogSubscriberFailed(logger, e, line.BuildId);
            }
        }
    }

    private void Unsubscribe(Guid buildId, Action<StepLogLine> onLine)
    {
        while (_subscribers.TryGetValue(buildId, out var list))
        {
            var rest = list.Remove(onLine);
            var done = rest.IsEmpty
                ? _subscribers.TryRemove(new KeyValuePair<Guid, ImmutableArray<Action<StepLogLine>>>(buildId, list))
                : _subscribers.TryUpdate(buildId, rest, list);
            if (done)
            {
                return;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A log subscriber of build {BuildId} failed")]
    private static partial void LogSubscriberFailed(ILogger logger, Exception exception, Guid buildId);

    private sealed class Subscription(BuildLogHub hub, Guid buildId, Action<StepLogLine> onLine) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                hub.Unsubscribe(buildId, onLine);
            }
        }
    }
}

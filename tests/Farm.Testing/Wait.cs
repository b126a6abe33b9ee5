using System.Diagnostics;

namespace Farm.Testing;

/// <summary>
/// The one way tests wait: poll a condition until it holds or a timeout passes, then fail naming what was
/// expected. The short pause between polls is the polling interval, not a wait for something to happen.
/// </summary>
public static class Wait
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(50);

    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> expected)
    {
        ArgumentNullException.ThrowIfNull(condition);
        ArgumentNullException.ThrowIfNull(expected);
        var elapsed = Stopwatch.StartNew();
        while (!await condition().ConfigureAwait(false))
        {
            if (elapsed.Elapsed > timeout)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0} s waiting for {expected()}");
            }

            await Task.Delay(PollInterval).ConfigureAwait(false);
        }
    }

    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, Func<string> expected) =>
        UntilAsync(() => Task.FromResult(condition()), timeout, expected);
}

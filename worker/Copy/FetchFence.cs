using System.Net;
using Farm.Contracts;
using Farm.Oci.Net;

namespace Farm.Worker.Copy;

/// <summary>
/// Where a worker may fetch on a build's behalf (ADD of an http(s) URL or a git repository): where the build's RUN steps
/// may connect, and nowhere else (<see cref="FetchFence"/>). Refused: what <see cref="FetchFence.Inherent"/> refuses
/// (this machine, link-local, multicast) and the sandbox's denied networks with the farm services the worker learned of
/// (<c>SandboxFirewall.DeniedNetworks</c>, <c>Farm:Worker:Sandbox:DeniedNetworks</c>).
/// </summary>
public static class WorkerFetchRules
{
    /// <summary>The worker's fence, reading <paramref name="denied"/> at each check (the list grows as the worker learns services).</summary>
    public static FetchFence Fence(Func<IReadOnlyCollection<IPNetwork>> denied)
    {
        ArgumentNullException.ThrowIfNull(denied);
        return new FetchFence((address, _, _) => ValueTask.FromResult(Refusal(address, denied())));
    }

    /// <summary>Why the worker does not fetch from <paramref name="address"/>, or null when it may.</summary>
    public static string? Refusal(IPAddress address, IReadOnlyCollection<IPNetwork> denied)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(denied);
        if (FetchFence.Inherent(address) is { } why)
        {
            return why;
        }

        return denied.Where(n => n.Contains(address)).Select(n => (IPNetwork?)n).FirstOrDefault() is { } network
            ? $"in {network}, a network of the farm's or denied to builds (Farm:Worker:Sandbox:DeniedNetworks)"
            : null;
    }
}

/// <summary>
/// FARM1213: a worker refused to fetch an ADD source from an address a build may not reach (this machine, the farm's
/// services, link-local); see <see cref="WorkerFetchRules"/>.
/// </summary>
public sealed class FetchRefusedException(string source, AddressRefusedException refused)
    : FarmException(
        FarmErrorCodes.FetchRefused,
        $"ADD source '{source}': a worker does not fetch from {refused.Address}, which is {refused.Why}. A build reaches what its RUN steps reach; serve the file from another address, or COPY it from the build context",
        refused);

namespace Farm.Worker;

/// <summary>
/// How a worker fences its RUN steps' private networks (<c>Farm:Worker:Sandbox</c>): slirp4netns gives a step
/// outbound access from this machine, and a firewall (<see cref="Farm.Containers.Sandbox.SandboxFirewall"/>) keeps it
/// off this machine's own addresses and off the farm's services.
/// </summary>
public sealed class WorkerSandboxOptions
{
    /// <summary>
    /// Whether the firewall is installed (default true; needs root and iptables). Without it, a step reaches every
    /// service on this machine's non-loopback addresses and the farm's Redis, RabbitMQ and registry.
    /// </summary>
    public bool Firewall { get; set; } = true;

    /// <summary>The group slirp4netns runs with, which the firewall matches; no user needs to be in it.</summary>
    public int Group { get; set; } = 64735;

    /// <summary>
    /// Networks (IPv4 addresses or CIDR blocks) RUN steps may not reach besides this machine's addresses, which are
    /// always refused (DNS excepted), and the services the worker learns of itself (its RabbitMQ, the cache store's
    /// registry). Add the farm's Redis and anything else that is the farm's, e.g. <c>10.20.0.0/24</c>.
    /// </summary>
    public List<string> DeniedNetworks { get; set; } = [];

    /// <summary>
    /// Whether what the worker fetches for a build (ADD of an http(s) URL or a git repository) is held to where RUN
    /// steps may connect (default true; <see cref="Copy.WorkerFetchRules"/>): not this machine, not the denied networks or the
    /// farm's services, not link-local. The local farm turns it off: its machine is its user's, and
    /// <c>ADD http://localhost:8000/file</c> works there as with docker build.
    /// </summary>
    public bool FenceFetches { get; set; } = true;
}

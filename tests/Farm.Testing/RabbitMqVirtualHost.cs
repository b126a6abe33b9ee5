using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Farm.Testing;

/// <summary>
/// A RabbitMQ virtual host of a test run's own, made and removed through the management API, so messages left by
/// an earlier run never reach this one. RabbitMQ with its management plugin must run: infra/up.sh.
/// </summary>
public sealed class RabbitMqVirtualHost : IAsyncDisposable
{
    public const string ManagementUrl = "http://127.0.0.1:15672/api/";

    private RabbitMqVirtualHost(string name)
    {
        Name = name;
        Management = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        Management.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.ASCII.GetBytes("guest:guest")));
    }

    private readonly List<string> _users = [];

    public string Name { get; }

    /// <summary>The value for FARM_RABBITMQ that points a process at this virtual host.</summary>
    public string AmqpUrl => $"amqp://guest:guest@127.0.0.1:5672/{Name}";

    /// <summary>An authenticated client of the management API, for publishing raw messages.</summary>
    public HttpClient Management { get; }

    public static async Task<RabbitMqVirtualHost> CreateAsync(string prefix)
    {
        var vhost = new RabbitMqVirtualHost(prefix + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            using var created = await vhost.Management.PutAsync($"{ManagementUrl}vhosts/{vhost.Name}", null).ConfigureAwait(false);
            created.EnsureSuccessStatusCode();
            using var permissions = await vhost.Management.PutAsync(
                $"{ManagementUrl}permissions/{vhost.Name}/guest",
                new StringContent("""{"configure":".*","write":".*","read":".*"}""", Encoding.UTF8, "application/json")).ConfigureAwait(false);
            permissions.EnsureSuccessStatusCode();
            return vhost;
        }
        catch (HttpRequestException e)
        {
            vhost.Management.Dispose();
            throw new InvalidOperationException(
                "RabbitMQ's management API at 127.0.0.1:15672 (guest/guest) did not answer: start RabbitMQ with infra/up.sh (or infra/rabbitmq.sh start).", e);
        }
    }

    /// <summary>Consumers RabbitMQ counts on a queue of this virtual host (0 when the queue does not exist yet).</summary>
    public async Task<int> ConsumersAsync(string queue)
    {
        using var response = await Management.GetAsync($"{ManagementUrl}queues/{Uri.EscapeDataString(Name)}/{queue}").ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            return 0;
        }

        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync().ConfigureAwait(false));
        return doc.RootElement.TryGetProperty("consumers", out var c) ? c.GetInt32() : 0;
    }

    /// <summary>
    /// A RabbitMQ user of this test (deleted with the virtual host) whose only permission on it is to write to the
    /// exchanges matching <paramref name="write"/> (a regex; <c>^$</c>: none), as a tenant's publisher is set up;
    /// <paramref name="configure"/> and <paramref name="read"/> give more (<c>.*</c> for all three: a worker's user).
    /// Returns its AMQP URL.
    /// </summary>
    public async Task<string> AddUserAsync(string user, string password, string write, string configure = "^$", string read = "^$")
    {
        using var created = await Management.PutAsync(
            $"{ManagementUrl}users/{Uri.EscapeDataString(user)}",
            new StringContent(JsonSerializer.Serialize(new Dictionary<string, string> { ["password"] = password, ["tags"] = string.Empty }), Encoding.UTF8, "application/json")).ConfigureAwait(false);
        created.EnsureSuccessStatusCode();
        _users.Add(user);
        using var permissions = await Management.PutAsync(
            $"{ManagementUrl}permissions/{Name}/{Uri.EscapeDataString(user)}",
            new StringContent(JsonSerializer.Serialize(new Dictionary<string, string> { ["configure"] = configure, ["write"] = write, ["read"] = read }), Encoding.UTF8, "application/json")).ConfigureAwait(false);
        permissions.EnsureSuccessStatusCode();
        return $"amqp://{Uri.EscapeDataString(user)}:{Uri.EscapeDataString(password)}@127.0.0.1:5672/{Name}";
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var user in _users)
        {
            try
            {
                using var _ = await Management.DeleteAsync($"{ManagementUrl}users/{Uri.EscapeDataString(user)}").ConfigureAwait(false);
            }
            catch (HttpRequestException)
            {
                // As for the vhost below.
            }
        }

        try
        {
            using var _ = await Management.DeleteAsync($"{ManagementUrl}vhosts/{Name}").ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            // The vhost only holds this run's queues; a missing RabbitMQ already failed the tests.
        }

        Management.Dispose();
    }
}

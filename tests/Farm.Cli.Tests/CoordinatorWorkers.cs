using System.Text.Json.Nodes;

namespace Farm.Cli.Tests;

/// <summary>What a coordinator says of its workers.</summary>
internal static class CoordinatorWorkers
{
    /// <summary>The names of the workers the coordinator at <paramref name="coordinatorUrl"/> heard from recently (<c>/api/workers</c>); none while it does not answer.</summary>
    public static async Task<IReadOnlyList<string>> NamesAsync(HttpClient http, string coordinatorUrl)
    {
        try
        {
            var workers = JsonNode.Parse(await http.GetStringAsync(new Uri(coordinatorUrl + "/api/workers")))!.AsArray();
            return [.. workers.Select(w => (string?)w!["name"] ?? string.Empty)];
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return [];
        }
    }
}

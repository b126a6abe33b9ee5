using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Farm.Coordinator.Tests;
using Farm.Oci.Net;
using Farm.Testing;

namespace Farm.Telemetry.Tests;

/// <summary>
/// Headless Chromium driven through chromedriver's W3C WebDriver HTTP API (Debian's <c>chromium</c> and
/// <c>chromium-driver</c>, installed by infra/install.sh). Only what the dashboard test needs: open a page, run a
/// script, click, take a screenshot.
/// </summary>
public sealed class WebDriver : IAsyncDisposable
{
    private const string Driver = "/usr/bin/chromedriver";
    private readonly Process _driver;
    private readonly HttpClient _http;
    private readonly string _session;

    private WebDriver(Process driver, HttpClient http, string session)
    {
        _driver = driver;
        _http = http;
        _session = session;
    }

    public static async Task<WebDriver> StartAsync()
    {
        if (!File.Exists(Driver) || !File.Exists("/usr/bin/chromium"))
        {
            throw new InvalidOperationException("Headless Chromium is required: apt-get install chromium chromium-driver (or run infra/install.sh).");
        }

        var port = FreePorts.Tcp();
        var driver = Process.Start(new ProcessStartInfo(Driver, $"--port={port.ToString(CultureInfo.InvariantCulture)}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        }) ?? throw new InvalidOperationException("chromedriver did not start.");
        driver.OutputDataReceived += (_, _) => { };
        driver.ErrorDataReceived += (_, _) => { };
        driver.BeginOutputReadLine();
        driver.BeginErrorReadLine();
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromMinutes(2) };
        try
        {
            await Wait.UntilAsync(
                async () =>
                {
                    try
                    {
                        using var status = await http.GetAsync("status");
                        return status.IsSuccessStatusCode;
                    }
                    catch (HttpRequestException)
                    {
                        return false;
                    }
                },
                TimeSpan.FromSeconds(30),
                () => "chromedriver to answer /status");
            var capabilities = new JsonObject
            {
                ["capabilities"] = new JsonObject
                {
                    ["alwaysMatch"] = new JsonObject
                    {
                        ["goog:chromeOptions"] = new JsonObject
                        {
                            ["binary"] = "/usr/bin/chromium",
                            // Root in a container: no sandbox; no GPU; a window the whole dashboard fits in.
                            ["args"] = new JsonArray("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"),
                        },
                    },
                },
            };
            using var response = await http.PostAsync("session", Body(capabilities));
            var answer = await response.Content.ReadFromJsonAsync<JsonObject>();
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"chromedriver refused the session: {answer?.ToJsonString()}");
            }

            return new WebDriver(driver, http, (string)answer!["value"]!["sessionId"]!);
        }
        catch
        {
            http.Dispose();
            driver.Kill(entireProcessTree: true);
            driver.Dispose();
            throw;
        }
    }

    public Task NavigateAsync(Uri url) => CommandAsync("url", new JsonObject { ["url"] = url.ToString() });

    /// <summary>Runs <paramref name="script"/> (a function body; <c>return</c> gives the result) in the page.</summary>
    public async Task<JsonNode?> ExecuteAsync(string script) =>
        await CommandAsync("execute/sync", new JsonObject { ["script"] = script, ["args"] = new JsonArray() });

    /// <summary>The page as PNG bytes.</summary>
    public async Task<byte[]> ScreenshotAsync()
    {
        using var response = await _http.GetAsync($"session/{_session}/screenshot");
        var answer = await response.Content.ReadFromJsonAsync<JsonObject>();
        response.EnsureSuccessStatusCode();
        return Convert.FromBase64String((string)answer!["value"]!);
    }

    private async Task<JsonNode?> CommandAsync(string command, JsonObject body)
    {
        using var response = await _http.PostAsync($"session/{_session}/{command}", Body(body));
        var answer = await response.Content.ReadFromJsonAsync<JsonObject>();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"WebDriver {command} failed: {answer?.ToJsonString()}");
        }

        return answer!["value"];
    }

    /// <summary>With a Content-Length: chromedriver cuts a chunked request (what JsonContent sends) short.</summary>
    private static StringContent Body(JsonObject json) => new(json.ToJsonString(), System.Text.Encoding.UTF8, "application/json");

    public async ValueTask DisposeAsync()
    {
        try
        {
            using var _ = await _http.DeleteAsync($"session/{_session}");
        }
        catch (HttpRequestException)
        {
            // chromedriver is killed next either way.
        }

        _http.Dispose();
        if (!_driver.HasExited)
        {
            _driver.Kill(entireProcessTree: true);
            await _driver.WaitForExitAsync();
        }

        _driver.Dispose();
    }
}

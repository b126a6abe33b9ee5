using Farm.Contracts;
using Farm.Coordinator.Auth;
using Farm.Coordinator.Hosting;
using Microsoft.AspNetCore.Builder;

// The coordinator process: an Orleans silo with the layer and build grains, MassTransit, and the HTTP API, health,
// metrics and dashboard. With --Farm:Local:Enabled=true it is the local farm daemon the CLI starts (a worker in the
// same process, on a unix socket). Settings: appsettings.json, environment variables (Farm__Coordinator__Redis,
// FARM_RABBITMQ) and arguments (--Farm:Coordinator:HttpPort=8480); see README.md. `farm-coordinator token create
// --tenant NAME` mints an API token instead (README.md, "A shared farm").
if (TokenCommand.Handles(args))
{
    return TokenCommand.Run(args, Console.Out, Console.Error);
}

var builder = WebApplication.CreateBuilder(args);
try
{
    builder.AddFarmCoordinatorApp();
}
catch (FarmException e)
{
    // Settings that cannot work (or would expose the API without auth): one line that says what to set, no stack.
    Console.Error.WriteLine($"farm-coordinator: {e.Message}");
    return 1;
}

await using var app = builder.Build();
app.MapFarmCoordinator();
try
{
    await app.RunAsync().ConfigureAwait(false);
}
catch (FarmException e)
{
    // A service that refuses this coordinator at start (Redis's ACL or certificate, FARM4251; a CA file, FARM3030).
    Console.Error.WriteLine($"farm-coordinator: {e.Message}");
    return 1;
}

return 0;

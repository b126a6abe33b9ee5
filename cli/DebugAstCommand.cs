using System.CommandLine;
using System.Text;
using Farm.Contracts;
using Farm.Dockerfile.Parsing;

namespace Farm.Cli;

/// <summary><c>farm debug ast FILE</c>: prints the parse tree in BuildKit's dump form.</summary>
internal static class DebugAstCommand
{
    public static Command Create()
    {
        var file = new Argument<FileInfo>("FILE") { Description = "The Dockerfile to parse." };
        var command = new Command("ast", "Print how Farm parses a Dockerfile, one line per instruction, in BuildKit's dump form.");
        command.Arguments.Add(file);
        command.SetAction(parseResult =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            var path = parseResult.GetValue(file)!;
            string text;
            try
            {
                // Strict decoding: a Dockerfile that is not UTF-8 would otherwise parse into garbage silently.
                text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(File.ReadAllBytes(path.FullName));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or DecoderFallbackException)
            {
                error.WriteLine($"farm: cannot read {path}: {e.Message}");
                return 1;
            }

            try
            {
                // The path as typed, so the location can be pasted into an editor.
                var ast = DockerfileParser.Parse(text, path.ToString());
                output.Write(AstDumper.Dump(ast) + "\n");
                return 0;
            }
            catch (FarmException e)
            {
                error.WriteLine($"farm: {e.Message}");
                return 1;
            }
        });
        return command;
    }
}
